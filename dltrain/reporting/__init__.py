"""Figures and tables written for people."""

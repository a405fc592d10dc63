"""`dltrain lab`: the lecture's claims, each tested by a small grid of runs on the user's data."""

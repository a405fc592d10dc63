"""Activity recognition data: sources (HAPT, UCI HAR, classroom CSV folders, long CSV) to windows."""

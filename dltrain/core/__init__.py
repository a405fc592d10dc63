"""What every layer uses: errors, registries, console output, atomic files, optional extras."""

"""The records service: the one door through which every read and write of form data goes."""

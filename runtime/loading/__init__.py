"""Reading definition packs from files into the validated model, with located errors."""

"""Whole denoisers, one file each: canvas region data at diffusion time t → a prediction per
region."""

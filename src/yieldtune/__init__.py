"""yieldtune: hyperparameter optimization for reaction-yield Transformers on SMILES."""

__version__ = "0.1.0"

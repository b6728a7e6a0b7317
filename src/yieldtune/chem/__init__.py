"""yieldtune.chem: SMILES tokenization and randomized-SMILES augmentation (RDKit imported lazily)."""

from yieldtune.chem.augment import (
    AugmentationCache,
    augment_reaction,
    derive_n_variants,
    extra_copies,
    generate_variants,
    randomize_smiles,
)
from yieldtune.chem.tokenizer import SMILES_REGEX, SmilesTokenizer, tokenize

__all__ = ["AugmentationCache", "SMILES_REGEX", "SmilesTokenizer", "augment_reaction", "derive_n_variants",
           "extra_copies", "generate_variants", "randomize_smiles", "tokenize"]

"""Named reaction data sets: where each file comes from, its SHA-256, how to read it, its standard split.

A study file says ``data = "buchwald-hartwig"`` and gets the same bytes everywhere: files are fetched once
into the cache (downloaded from upstream and converted, or taken from an offline copy with ``--data-dir``)
and always verified by checksum.
"""

from __future__ import annotations

from dataclasses import dataclass

from yieldtune.data.table import DataSpec
from yieldtune.errors import DataError

# The HTE sets come from the rxn_yields project (rxn4chemistry, MIT licence) at a fixed commit: BH as one
# Excel workbook, SM as TSVs. They are downloaded from the raw-file address of that commit (or a mirror with
# the same layout), checked against these SHA-256 sums and converted to the reference CSVs (data/upstream.py).
RXN_YIELDS_COMMIT = "d9e6b87ce1b881978490d68bfc00021e3b48127a"
RXN_YIELDS_RAW = f"https://raw.githubusercontent.com/rxn4chemistry/rxn_yields/{RXN_YIELDS_COMMIT}"
_BH_XLSX = "data/Buchwald-Hartwig/Dreher_and_Doyle_input_data.xlsx"
_BH_XLSX_SHA = "d7f318abfbb42eaadca482b1e9aa54540eeed60e0089b6a0eb4e75366c31ee2e"
_SM_TSV_SHA = [
    "d2acd54d3958a5369346177834e6c2b16388813bb28b105181a252a15c4a79a8",
    "f4d8ff77db48c5862134309cabc618735bf3dc16e13004c1cb4a02c1015c9b7a",
    "384733377961659f3ec7b0c33a64d92e31f1283c3d9aab552a7f20e01845a0d1",
    "0b939b662ad26ff96339b2d43c1db59e8fdf4775431168a590a5a251619539e7",
    "8cd6bb56a8a0db7d7e52f614dc83860ae1ecb3447b673bbbe7408a4a1c277861",
    "3c45c00c7e0b9a826c7885443d09601517f6f509c52bb62751eee5f7f71bbd5f",
    "4fc96fdd6995813822968145c0614b17af5e6eb7f844d1f0b569f9020e827acd",
    "1ebb816b2c66e1c2a4a96ac82e626ea60f5233ea4f7ccf71828876ab792e69b8",
    "795ed45e3dbb081dda21b5b1c08e21b0e8498bea3548f09ca37a6d82b0ca9ae8",
    "b29febdd4f23f04248c6651906093ca06090b08b76e859f5b2bd3910cd77a31b",
]
# aichem2024 has no stable download address: the user downloads it by hand and fetch verifies it.
AICHEM_SOURCE = ("figshare record 30265270, \"Demo organic reaction dataset used in Physical Science Track of the "
                 "2nd World AI4S Prize\" (https://doi.org/10.6084/m9.figshare.30265270)")


@dataclass(frozen=True)
class UpstreamFile:
    """A file of an upstream repository: its path there (from the repository root) and its SHA-256."""

    path: str
    sha256: str
    kind: str  # "bh-xlsx" or "sm-tsv": which converter reads it


@dataclass(frozen=True)
class DatasetFile:
    """One file of a named data set: its name, checksum, where it comes from and its standard 'first N train'."""

    name: str
    sha256: str | None  # None only for generated files
    source: UpstreamFile | None = None  # converted from this upstream file (None: placed by hand or generated)
    train_n: int | None = None
    labelled: bool = True


@dataclass(frozen=True)
class Dataset:
    """A named data set: folder in the cache/offline layout, files, how to read them, and a default file."""

    name: str
    folder: str
    files: tuple[DatasetFile, ...]
    spec: DataSpec
    default_file: str
    description: str
    test_file: str | None = None  # a separate unlabelled test file (aichem2024)
    generated: bool = False

    def file(self, name: str | None = None) -> DatasetFile:
        """The named file (``.csv`` may be left off), or the default one."""
        wanted = name or self.default_file
        for f in self.files:
            if f.name in (wanted, f"{wanted}.csv"):
                return f
        raise DataError(f"data set {self.name!r} has no file {wanted!r}; files: "
                        f"{', '.join(f.name for f in self.files)}")

    def spec_for(self, file: str | None = None) -> DataSpec:
        """The DataSpec to read ``file`` with (unlabelled test files get target=None)."""
        return self.spec if self.file(file).labelled else self.spec.model_copy(update={"target": None})


_BH_SHA = {
    "FullCV_01.csv": "bd6119df3df1a7115b3f4631019796a1f7f804382e64aa434f8f26eef296309a",
    "FullCV_02.csv": "a7792d816c1eaee6c1de77e71401ed2f8dc05b9e17f7bf8d6c549558dde5e900",
    "FullCV_03.csv": "46b06c8b7539fb2fc5a55409057e089984ca2ba16b08d2bd8cd621eebb3ee80c",
    "FullCV_04.csv": "b9d92a57be3e23c8affcd48aeb812f6d0edc52e79c35657bc643393897420821",
    "FullCV_05.csv": "76167998b8d36572ef05901bf9b08f5939fd68b54fb612313de75b3d8a9d6cc0",
    "FullCV_06.csv": "d487b7dd3ec004e611fd82333a03e94816969da5baa24dc709c6412acd0b4d33",
    "FullCV_07.csv": "301d2ab4c5e2e2e955c8db7362f8a9182120a899794e94e39f93b604cb541563",
    "FullCV_08.csv": "ff96698a63d9d389a15061b4ec41b64d8b6b6db028bfa8a077eeed90046f0ed9",
    "FullCV_09.csv": "f2673ed648002abed2dc5f89091886757f22b7c8b9e495015a2098b05091d794",
    "FullCV_10.csv": "89140838d38a44c19441081b055c028793c8591b871d79feb4e35aa6cfd6c7c4",
    "Test1.csv": "ff39a512977917301b1e3b285eb7f6fbb9ce8c7700a7d180c826fa6198f9b329",
    "Test2.csv": "3e0aadfdba4690c2aaef95f708d61030016cad15046f1d10fd9271a101f93acc",
    "Test3.csv": "631a8deb42d4c46c469c06e59083b0f4cb14ec79529df7a8b2e4cbfc8b356f29",
    "Test4.csv": "68ff124a762caf3c5e0eaaf5d4f8754e5ed0f4ebfa026ab86adcbfc83f11ed8e",
}
# Out-of-sample (by additive) splits: first N rows train.
_BH_TEST_TRAIN_N = {"Test1.csv": 3057, "Test2.csv": 3055, "Test3.csv": 3058, "Test4.csv": 3055}

_SM_SHA = [
    "ddc3d58ab7fd35d84ee44b212050ce2f058b706954b50684ac84ccfc45458acd",
    "45546da501aae797fdfa1d7664853ad1a1283d92cb61733f193d4bb82cdc70ce",
    "99edc5cf78db8bdde1b35fe8236ca105924d0fb208e260ec8461f27da93b1331",
    "bf6271199ada10662054544b3f7ace4fbe51ba3f59abbc6eae416b789dc032fc",
    "efa11086f342ce1ec421637cd31448095d235dd3dd98c34140c19eeb5ecc7420",
    "26f8b3993a7946113396a19b5c35b072bf164ddd5923749f652bbfe8be6483a0",
    "c868cbc2c358efa226868b2475796d459d501a69c11264d8164c6f77a6631b7d",
    "be47fb02b4726d3b988c34a019d19135412a5d1b8bb16a78b1d0670088133bd2",
    "b45aaa1140d9dd7bd5a6ed163eb2b6e10ca9d7078e27bc44e728c0521674f1dc",
    "5d0889c70d5c1eed7b32d098b90acef9e548f20faaf40a19d7c1785428a8f991",
]

DATASETS: dict[str, Dataset] = {
    "buchwald-hartwig": Dataset(
        name="buchwald-hartwig",
        folder="buchwald_hartwig",
        files=tuple(
            DatasetFile(name, sha, UpstreamFile(_BH_XLSX, _BH_XLSX_SHA, "bh-xlsx"), _BH_TEST_TRAIN_N.get(name, 2767))
            for name, sha in _BH_SHA.items()
        ),
        spec=DataSpec.rxn(target="yield"),
        default_file="FullCV_01.csv",
        description="Ahneman et al. 2018, 3,955 Pd C-N couplings; FullCV_01..10 first 2,767 train, "
                    "Test1..4 by additive",
    ),
    "suzuki-miyaura": Dataset(
        name="suzuki-miyaura",
        folder="suzuki_miyaura",
        files=tuple(
            DatasetFile(f"random_split_{i}.csv", sha,
                        UpstreamFile(f"data/Suzuki-Miyaura/random_splits/random_split_{i}.tsv", tsv_sha, "sm-tsv"),
                        4032)
            for i, (sha, tsv_sha) in enumerate(zip(_SM_SHA, _SM_TSV_SHA))
        ),
        spec=DataSpec.rxn(target="yield"),
        default_file="random_split_0.csv",
        description="Perera et al. 2018, 5,760 Suzuki-Miyaura couplings; random_split_0..9 first 4,032 train",
    ),
    "aichem2024": Dataset(
        name="aichem2024",
        folder="aichem2024",
        files=(
            DatasetFile("round1_train_data.csv",
                        "f99393254b28ea4575b1a22b88b9148f0102556af9e23292db83e49752647a5b"),
            DatasetFile("round1_test_data.csv",
                        "ede17fc3274aa84618dad2a2ecad7ab32fd106a9ad67831e6b04e7237a0c75cd", labelled=False),
        ),
        spec=DataSpec(),
        default_file="round1_train_data.csv",
        test_file="round1_test_data.csv",
        description="AI4S Prize 2024 catalytic C-N coupling, 23,538 train / 2,616 unlabelled test (components layout)",
    ),
    "synthetic": Dataset(
        name="synthetic",
        folder="synthetic",
        files=(DatasetFile("synthetic_plate.csv", None, None, 600),),
        spec=DataSpec(),
        default_file="synthetic_plate.csv",
        description="864-well synthetic C-N coupling plate with a hidden yield function, generated locally (seed 0)",
        generated=True,
    ),
}


def get_dataset(name: str) -> Dataset:
    """The registered data set ``name`` or a DataError listing the known names."""
    try:
        return DATASETS[name]
    except KeyError:
        raise DataError(f"unknown data set {name!r}; known: {', '.join(DATASETS)}") from None


def __getattr__(attr: str):
    # fetch_dataset / resolve_dataset live in fetch.py (which needs this module); re-exported lazily here.
    if attr in ("fetch_dataset", "resolve_dataset"):
        from yieldtune.data import fetch

        return getattr(fetch, attr)
    raise AttributeError(attr)

"""Study files, search space, sampler/pruner registries and storage URLs (no training, fast)."""

from __future__ import annotations

import textwrap
from pathlib import Path

import optuna
import pytest

from helpers import write_locked_sqlite
from yieldtune.config import RunConfig
from yieldtune.errors import ConfigError, StorageError
from yieldtune.study.pruners import PRUNERS, build_pruner
from yieldtune.study.samplers import SAMPLERS, build_sampler
from yieldtune.study.space import largest_divisor_at_most
from yieldtune.study.spec import load_study_spec, parse_study_spec
from yieldtune.study.storage import open_storage, redact_url

REPO = Path(__file__).resolve().parents[3]


def _write(tmp_path: Path, body: str, name: str = "s.toml") -> Path:
    p = tmp_path / name
    p.write_text(textwrap.dedent(body))
    return p


MINIMAL = """
name = "t"
[data]
dataset = "plate.csv"
"""


@pytest.mark.parametrize("path", sorted((REPO / "studies").rglob("*.toml")), ids=lambda p: p.stem)
def test_shipped_study_files_validate(path):
    spec = load_study_spec(path)
    assert spec.name == path.stem
    assert spec.search().searched
    assert spec.storage_url().startswith("sqlite:///")
    assert spec.artifact_dir == path.parent / "artifacts" / spec.name


def test_defaults_and_paths(tmp_path, monkeypatch):
    monkeypatch.delenv("TUNE_STORAGE", raising=False)
    spec = load_study_spec(_write(tmp_path, MINIMAL))
    assert spec.direction == "maximize"
    assert spec.sampler.type == "tpe" and spec.sampler.multivariate and spec.sampler.constant_liar
    assert spec.pruner.type == "median" and spec.pruner.n_warmup_steps == 2
    assert spec.storage_url() == f"sqlite:///{tmp_path.resolve() / 't.db'}"
    assert spec.artifact_dir == tmp_path.resolve() / "artifacts" / "t"
    assert spec.ensemble.top_k == 3 and spec.ensemble.distinct == "params"
    # precedence: --storage > TUNE_STORAGE > file > default
    spec2 = load_study_spec(_write(tmp_path, MINIMAL + '[storage]\nurl = "sqlite:///file.db"\n', "s2.toml"))
    assert spec2.storage_url() == "sqlite:///file.db"
    monkeypatch.setenv("TUNE_STORAGE", "sqlite:///env.db")
    assert spec2.storage_url() == "sqlite:///env.db"
    assert spec2.storage_url("sqlite:///flag.db") == "sqlite:///flag.db"


@pytest.mark.parametrize("body, needle", [
    ('name = "t"\n[data]\ndataset = "x.csv"\ncolour = 1\n', "data.colour: unknown key"),
    ('name = "t"\nbogus = 1\n[data]\ndataset = "x.csv"\n', "bogus: unknown key"),
    ('name = "t"\n', "data: Field required"),
    (MINIMAL + "[search_space]\nwarp_drive = [1, 2]\n", "search_space.warp_drive: unknown parameter"),
    (MINIMAL + "[search_space]\nlr = {low = 1e-2, high = 1e-4}\n", "search_space.lr: empty range"),
    (MINIMAL + "[search_space]\nlr = {low = 0.0, high = 1e-2, log = true}\n", "search_space.lr: a log range"),
    (MINIMAL + "[search_space]\nn_layers = {low = 1.5, high = 3}\n", "search_space.n_layers: expected int"),
    (MINIMAL + '[search_space]\nbatch_size = ["big"]\n', "search_space.batch_size: expected int"),
    (MINIMAL + "[search_space]\nd_model = []\n", "search_space.d_model: empty list"),
    (MINIMAL + "[search_space]\nlr = {lo = 1, high = 2}\n", "search_space.lr: unknown key(s) lo"),
    (MINIMAL + '[pruner]\ntype = "median"\nn_warmup_steps = -1\n', "pruner.median.n_warmup_steps"),
    (MINIMAL + '[pruner]\ntype = "magic"\n', "pruner"),
    (MINIMAL + '[sampler]\ntype = "tpe"\nn_startup = 3\n', "sampler.tpe.n_startup: unknown key"),
    (MINIMAL + "[storage]\nheartbeat_interval = 10\ngrace_period = 5\n", "grace_period (5) must exceed"),
    (MINIMAL + "[fixed.model]\nd_model = 64\n", "fixed.model.d_model is also searched"),
    (MINIMAL + "[fixed.model]\nwidth = 64\n", "fixed.model.width: unknown key"),
    (MINIMAL + "[[warm_start.configs]]\nnope = 1\n", "warm_start.configs[0].nope: not a searched parameter"),
    (MINIMAL + '[artifacts]\nurl = "/data/artifacts"\n', "artifacts.url: must look like s3://bucket"),
    (MINIMAL + '[artifacts]\nurl = "s3:///prefix"\n', "artifacts.url: must look like s3://bucket"),
    (MINIMAL + '[artifacts]\nendpoint_url = "http://minio:9000"\n', "endpoint_url is only used with url"),
    (MINIMAL + '[ensemble]\nmethod = "stacking"\n', "ensemble.method"),
    (MINIMAL + "[validation]\nposition = 6\n", 'validation: position is only used with scheme = "molecules"'),
    (MINIMAL + '[validation]\nscheme = "molecules"\nposition = 0\n', "validation.position"),
])
def test_bad_study_files_name_file_and_key(tmp_path, body, needle):
    path = _write(tmp_path, body)
    with pytest.raises(ConfigError) as err:
        load_study_spec(path)
    msg = str(err.value)
    assert str(path) in msg and needle in msg, msg
    assert "\n" not in msg


def test_malformed_toml_and_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="malformed TOML"):
        load_study_spec(_write(tmp_path, 'name = "t"\n[data\n'))
    with pytest.raises(ConfigError, match="file not found"):
        load_study_spec(tmp_path / "nope.toml")


def test_partial_range_override_keeps_default_bounds(tmp_path):
    spec = load_study_spec(_write(tmp_path, MINIMAL + "[search_space]\nlr = {high = 1e-2}\n"))
    lr = spec.search().entries["lr"]
    assert (lr.low, lr.high, lr.log) == (1e-5, 1e-2, True)


def test_new_bounds_drop_the_default_step_and_a_misfit_step_is_an_error(tmp_path):
    spec = load_study_spec(_write(tmp_path, MINIMAL + "[search_space]\nepochs = {low = 3, high = 6}\n"))
    epochs = spec.search().entries["epochs"]
    assert (epochs.low, epochs.high, epochs.step) == (3, 6, None)  # not the default's step 10 ([3, 3])
    with pytest.raises(ConfigError, match=r"search_space.epochs: high - low \(3\) is not a multiple of step 2"):
        load_study_spec(_write(tmp_path, MINIMAL + "[search_space]\nepochs = {low = 3, high = 6, step = 2}\n",
                               name="t.toml"))


def test_suggest_gives_valid_configs_with_static_distributions(tmp_path):
    """Every sampled config is a valid RunConfig (heads divide d_model) and each name keeps one distribution."""
    spec = load_study_spec(_write(tmp_path, MINIMAL + textwrap.dedent("""
        [search_space]
        d_model = [24, 40, 64]
        n_heads = [2, 4, 8]
        ffn_mult = [2, 4]
        use_augmentation = [false, true]
        scheduler = ["cosine", "step"]
        [fixed.train]
        precision = "fp32"
    """)))
    space = spec.search()
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    seen_dists: dict = {}
    for _ in range(40):
        trial = study.ask()
        cfg = space.suggest(trial)
        assert isinstance(cfg, RunConfig)
        assert cfg.model.d_model % cfg.model.n_heads == 0
        assert cfg.model.n_heads <= trial.params["n_heads"]
        assert cfg.model.ffn_dim == trial.params["ffn_mult"] * cfg.model.d_model
        assert cfg.train.precision == "fp32"
        assert ("step_gamma" in trial.params) == (trial.params["scheduler"] == "step")
        assert ("augment_ratio" in trial.params) == trial.params["use_augmentation"]
        if not trial.params["use_augmentation"]:
            assert cfg.train.augment_ratio == 0.0
        for name, dist in study._storage.get_trial(trial._trial_id).distributions.items():
            assert seen_dists.setdefault(name, dist) == dist
        study.tell(trial, 0.0)
    # a finished trial's params rebuild the same config
    t = study.trials[-1]
    assert space.config_from_params(t.params).model == space.suggest(optuna.trial.FixedTrial(t.params)).model


def test_largest_divisor():
    assert largest_divisor_at_most(24, 8) == 8
    assert largest_divisor_at_most(40, 16) == 10
    assert largest_divisor_at_most(7, 4) == 1


def test_every_sampler_and_pruner_builds(tmp_path):
    grid_space = MINIMAL + textwrap.dedent("""
        [search_space]
        epochs = 2
        d_model = [16, 32]
        n_layers = 1
        reaction_layers = 1
        n_heads = 2
        ffn_mult = 2
        dropout = 0.0
        pooling = ["cls", "mean"]
        lr = [1e-3, 1e-4]
        weight_decay = 0.0
        batch_size = 16
        use_augmentation = false
        scheduler = "constant"
        warmup_frac = 0.0
    """)
    for name in SAMPLERS:
        spec = load_study_spec(_write(tmp_path, grid_space + f'[sampler]\ntype = "{name}"\nseed = 3\n'))
        sampler = build_sampler(spec.sampler, spec.search())
        assert isinstance(sampler, optuna.samplers.BaseSampler)
    spec = load_study_spec(_write(tmp_path, MINIMAL + '[sampler]\ntype = "grid"\n'))
    with pytest.raises(ConfigError, match="grid needs lists"):
        build_sampler(spec.sampler, spec.search())
    for name in PRUNERS:
        spec = load_study_spec(_write(tmp_path, MINIMAL + f'[pruner]\ntype = "{name}"\n'))
        assert isinstance(build_pruner(spec.pruner), optuna.pruners.BasePruner)
    spec = load_study_spec(_write(tmp_path, MINIMAL + textwrap.dedent("""
        [pruner]
        type = "patient"
        patience = 1
        [pruner.wrapped]
        type = "percentile"
        percentile = 10.0
    """)))
    pruner = build_pruner(spec.pruner)
    assert isinstance(pruner, optuna.pruners.PatientPruner)
    assert isinstance(pruner._wrapped_pruner, optuna.pruners.PercentilePruner)


def test_per_worker_seeds_differ(tmp_path):
    spec = load_study_spec(_write(tmp_path, MINIMAL + '[sampler]\ntype = "random"\nseed = 1\n'))
    firsts = []
    for wid in ("w0", "w1"):
        study = optuna.create_study(sampler=build_sampler(spec.sampler, worker_id=wid))
        firsts.append(study.ask().suggest_float("x", 0, 1))
    assert firsts[0] != firsts[1]


def test_redact_url_hides_password():
    assert redact_url("postgresql+psycopg://bob:hunter2@db:5432/x") == "postgresql+psycopg://bob:***@db:5432/x"
    assert "hunter2" not in redact_url("mysql+pymysql://bob:hunter2@db/x")
    assert redact_url("sqlite:////tmp/a.db") == "sqlite:////tmp/a.db"


def test_unreachable_storage_is_one_line_without_password():
    with pytest.raises(StorageError) as err:
        open_storage("postgresql+psycopg://postgres:hunter2@127.0.0.1:1/x")
    msg = str(err.value)
    assert "hunter2" not in msg and "***" in msg and "\n" not in msg and "127.0.0.1" in msg


def test_sqlite_storage_uses_wal(tmp_path):
    import sqlalchemy

    url = f"sqlite:///{tmp_path / 'w.db'}"
    storage = open_storage(url, heartbeat_interval=1, grace_period=3)
    optuna.create_study(storage=storage, study_name="x")
    with storage.engine.connect() as conn:
        assert conn.execute(sqlalchemy.text("PRAGMA journal_mode")).scalar() == "wal"
        assert conn.execute(sqlalchemy.text("PRAGMA busy_timeout")).scalar() >= 10000
    assert storage.get_heartbeat_interval() == 1


def test_a_new_sqlite_storage_locked_by_another_worker_is_waited_for(tmp_path):
    # workers started together on a fresh file: the WAL switch is retried while another holds the write lock
    path = tmp_path / "locked.db"
    with write_locked_sqlite(path, seconds=0.5):
        storage = open_storage(f"sqlite:///{path}", heartbeat_interval=1, grace_period=3)
    optuna.create_study(storage=storage, study_name="after-lock")
    assert [s.study_name for s in storage.get_all_studies()] == ["after-lock"]


def test_parse_study_spec_from_dict():
    spec = parse_study_spec({"name": "d", "data": {"dataset": "synthetic"}, "objective": {"metric": "rmse"}},
                            source="<dict>")
    assert spec.direction == "minimize" and spec.path is None


def test_artifact_store_is_the_file_system_by_default_and_s3_needs_boto3(tmp_path):
    from optuna.artifacts import FileSystemArtifactStore

    from yieldtune.study.artifacts import artifact_store_for

    spec = load_study_spec(_write(tmp_path, MINIMAL))
    store = artifact_store_for(spec)
    assert isinstance(store, FileSystemArtifactStore) and spec.artifact_dir.is_dir()
    assert isinstance(artifact_store_for(spec, tmp_path / "elsewhere"), FileSystemArtifactStore)
    s3 = load_study_spec(_write(tmp_path, MINIMAL + '[artifacts]\nurl = "s3://bucket/runs"\n'
                                                    'endpoint_url = "http://127.0.0.1:9000"\n', "s3.toml"))
    assert (s3.artifacts.url, s3.artifacts.endpoint_url) == ("s3://bucket/runs", "http://127.0.0.1:9000")
    assert s3.artifact_dir == tmp_path.resolve() / "artifacts" / "t"  # the ensemble and cache stay local
    try:
        import boto3  # noqa: F401
    except ImportError:
        with pytest.raises(ConfigError, match=r"s3://bucket/runs.*needs boto3: pip install 'yieldtune\[s3\]'"):
            artifact_store_for(s3)
    else:
        from optuna.artifacts import Boto3ArtifactStore

        store = artifact_store_for(s3)  # no network until something is read or written
        assert isinstance(getattr(store, "store", store), Boto3ArtifactStore) and store.prefix == "runs/"


def test_reaction_layers_are_searched_only_for_the_hierarchical_architecture(tmp_path):
    spec = load_study_spec(_write(tmp_path, MINIMAL + textwrap.dedent("""
        [search_space]
        architecture = ["hierarchical", "flat"]
        reaction_layers = {low = 1, high = 3}
    """)))
    space = spec.search()
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    seen = set()
    for _ in range(12):
        trial = study.ask()
        config = space.suggest(trial)
        arch = trial.params["architecture"]
        seen.add(arch)
        assert config.model.architecture == arch
        assert ("reaction_layers" in trial.params) == (arch == "hierarchical")
        if arch == "hierarchical":
            assert config.model.reaction_layers == trial.params["reaction_layers"]
        study.tell(trial, 0.0)
    assert seen == {"hierarchical", "flat"}
    flat_only = load_study_spec(_write(tmp_path, MINIMAL + '[search_space]\narchitecture = "flat"\n', "f.toml"))
    assert "reaction_layers" not in flat_only.search().entries  # never sampled, so not listed either


def test_a_fixed_setting_beats_a_default_the_search_space_does_not_mention(tmp_path):
    spec = load_study_spec(_write(tmp_path, MINIMAL + textwrap.dedent("""
        [fixed.model]
        architecture = "flat"
        [fixed.train]
        grad_clip = 0.5
    """)))
    space = spec.search()
    config = space.suggest(optuna.create_study().ask())
    assert config.model.architecture == "flat" and config.train.grad_clip == 0.5
    assert "reaction_layers" not in space.entries  # conditional on the architecture the file fixed


@pytest.mark.parametrize("entry,message", [
    ('architecture = ["hierarchical", "flatt"]',
     "search_space.architecture: unknown choice 'flatt'; known: hierarchical, flat"),
    ('scheduler = ["cosine", "cosin"]', "search_space.scheduler: unknown choice 'cosin'"),
    ('pooling = "max"', "search_space.pooling: unknown choice 'max'; known: cls, mean"),
])
def test_an_unknown_choice_fails_when_the_file_loads(tmp_path, entry, message):
    """Not in the trial that first samples it, hours into a study."""
    with pytest.raises(ConfigError, match=message):
        load_study_spec(_write(tmp_path, MINIMAL + f"[search_space]\n{entry}\n")).search()


def test_molecules_validation_at_a_position_holds_out_that_kind(tmp_path):
    """scheme = "molecules" with position = 1: every trial validates on halides no training row holds, while
    each amine stays in training (on this plate the amines are as rare as the halides, and without the position
    seeds 3-7 hold out an amine)."""
    from helpers.plates import write_rxn_plate_csv
    from yieldtune.study.datasets import prepare_folds

    write_rxn_plate_csv(tmp_path / "plate.csv")
    for seed in range(3, 8):
        spec = load_study_spec(_write(tmp_path, MINIMAL + textwrap.dedent(f"""
            layout = "rxn"
            target = "yield"
            id_column = ""
            [validation]
            scheme = "molecules"
            fraction = 0.34
            seed = {seed}
            position = 1
            """)))
        (train, val), = prepare_folds(spec).folds
        halides = [{r.split(".")[0] for r in t.reactions} for t in (train, val)]
        amines = [{r.split(".")[1].split(">")[0] for r in t.reactions} for t in (train, val)]
        assert len(val) == 6 and not halides[0] & halides[1] and amines[1] <= amines[0]

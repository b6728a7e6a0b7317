"""Storage URLs as users type them: plain ``mysql://`` works with the PyMySQL driver yieldtune installs."""

from __future__ import annotations

import optuna

from yieldtune.study.storage import open_storage


def test_plain_mysql_url_opens_with_pymysql(mysql_url):
    plain = mysql_url.replace("mysql+pymysql://", "mysql://", 1)
    assert plain.startswith("mysql://")
    storage = open_storage(plain, heartbeat=False)  # before: "Failed to import DB access module"
    study = optuna.create_study(study_name="plain", storage=storage)
    study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=1)
    assert len(optuna.load_study(study_name="plain", storage=open_storage(plain, heartbeat=False)).trials) == 1

import sqlalchemy


def test_pg_fixture_gives_an_empty_database(pg_url):
    engine = sqlalchemy.create_engine(pg_url)
    with engine.connect() as conn:
        query = "select count(*) from information_schema.tables where table_schema='public'"
        assert conn.execute(sqlalchemy.text(query)).scalar() == 0
    engine.dispose()


def test_mysql_fixture_gives_an_empty_database(mysql_url):
    engine = sqlalchemy.create_engine(mysql_url)
    with engine.connect() as conn:
        assert conn.execute(sqlalchemy.text("show tables")).fetchall() == []
    engine.dispose()

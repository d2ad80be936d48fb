"""The lake catalog (Delta Lake tables), on a local disk and on S3: every interface operation, what
is left behind, and that other Delta Lake readers read the tables as they are."""

from __future__ import annotations

import json
import threading

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq
import pytest
from deltalake import DeltaTable

from mlplatform.warehouse import (
    Column,
    ColumnNameError,
    LakeCatalog,
    TableExistsError,
    TableName,
    TableNameError,
    TableNotFoundError,
    WarehouseError,
    catalogs_from_config,
)
from mlplatform.warehouse import lake as lake_module

from .conftest import SAMPLE_SCHEMA, Boom, Untouchable, failing_batches, ints_table, sample_table

FIRST_COMMIT = f"{0:020d}.json"


def name(table: str, schema: str = "default") -> TableName:
    return TableName("lake", schema, table)


def everything_under(lake: LakeCatalog) -> list[str]:
    """Every file and folder in the lake, relative to its root."""
    infos = lake.fs.get_file_info(pafs.FileSelector(lake.root, recursive=True, allow_not_found=True))
    return sorted(i.path[len(lake.root) + 1 :] for i in infos)


def read_all(lake: LakeCatalog, table: TableName | str, **kwargs) -> pa.Table:
    batches = list(lake.read_batches(table, **kwargs))
    return pa.Table.from_batches(batches, schema=lake.arrow_schema(table) if not batches else None)


# --- the interface -----------------------------------------------------------------------------


def test_it_round_trips_every_type_with_nulls_and_empty_strings(lake):
    table = sample_table(1000)
    assert lake.create(name("sample"), SAMPLE_SCHEMA, table.to_batches(max_chunksize=300)) == 1000

    back = read_all(lake, name("sample"))
    assert back.equals(table)
    countries = back.column("country").to_pylist()
    assert None in countries and "" in countries and "\\N" in countries


def test_it_describes_the_columns_and_counts_the_rows(lake):
    lake.create(name("sample"), SAMPLE_SCHEMA, [sample_table(25)])

    assert lake.columns(name("sample"))[:2] == [Column("id", "int64"), Column("small", "int16")]
    assert lake.columns("sample")[-1] == Column("paid_at", "timestamp[us, tz=UTC]")
    assert lake.row_count("sample") == 25
    assert lake.exists("default.sample") and lake.exists("lake.default.sample")


def test_it_counts_rows_from_the_parquet_footers_without_reading_data(lake, monkeypatch):
    lake.create(name("numbers"), pa.schema([("n", pa.int64())]), [ints_table(5000)])

    def no_data(*args, **kwargs):
        raise AssertionError("data was read")

    monkeypatch.setattr(pq.ParquetFile, "iter_batches", no_data)
    monkeypatch.setattr(pq.ParquetFile, "read", no_data)
    monkeypatch.setattr(pq.ParquetFile, "read_row_group", no_data)
    assert lake.row_count(name("numbers")) == 5000


def test_it_reads_batches_of_exactly_the_batch_size_in_order(lake, monkeypatch):
    monkeypatch.setattr(lake_module, "ROW_GROUP_ROWS", 100)  # several row groups and parts
    monkeypatch.setattr(lake_module, "ROW_GROUPS_PER_PART", 3)
    lake.create(name("numbers"), pa.schema([("n", pa.int64())]), ints_table(1001).to_batches(77))

    batches = list(lake.read_batches(name("numbers"), batch_size=64))

    assert [b.num_rows for b in batches] == [64] * 15 + [41]
    assert pa.Table.from_batches(batches).column("n").to_pylist() == list(range(1001))


def test_it_writes_row_groups_and_rolls_over_to_new_part_files(lake, monkeypatch):
    monkeypatch.setattr(lake_module, "ROW_GROUP_ROWS", 10)
    monkeypatch.setattr(lake_module, "ROW_GROUPS_PER_PART", 2)
    lake.create(name("numbers"), pa.schema([("n", pa.int64())]), ints_table(45).to_batches(7))

    files = [path for path, _ in lake._files(name("numbers"))]
    groups = []
    for path in files:
        with pq.ParquetFile(path, filesystem=lake.fs) as pf:
            groups.append([pf.metadata.row_group(i).num_rows for i in range(pf.num_row_groups)])
    assert groups == [[10, 10], [10, 10], [5]]


def test_it_reads_only_the_requested_columns(lake):
    lake.create(name("sample"), SAMPLE_SCHEMA, [sample_table(10)])

    back = read_all(lake, name("sample"), columns=["country", "id"])

    assert back.column_names == ["country", "id"]
    assert back.column("id").to_pylist() == list(range(10))
    with pytest.raises(WarehouseError, match='has no column "nope"'):
        lake.read_batches(name("sample"), columns=["id", "nope"])


def test_head_returns_the_first_rows(lake):
    lake.create(name("numbers"), pa.schema([("n", pa.int64())]), ints_table(500).to_batches(100))

    assert lake.head(name("numbers"), 3).column("n").to_pylist() == [0, 1, 2]
    assert lake.head(name("numbers")).num_rows == 50
    assert lake.head(name("numbers"), 0).schema == pa.schema([("n", pa.int64())])
    assert lake.head(name("numbers"), 10_000).num_rows == 500


def test_it_creates_an_empty_table_that_keeps_its_schema(lake):
    assert lake.create(name("empty"), SAMPLE_SCHEMA, iter([])) == 0

    assert lake.exists(name("empty"))
    assert lake.row_count(name("empty")) == 0
    assert lake.arrow_schema(name("empty")) == SAMPLE_SCHEMA
    assert lake.head(name("empty")).num_rows == 0
    assert list(lake.read_batches(name("empty"))) == []


def test_it_refuses_an_output_table_that_exists(lake):
    lake.create(name("scores"), pa.schema([("n", pa.int64())]), [ints_table(3)])
    before = everything_under(lake)

    with pytest.raises(TableExistsError, match='"lake.default.scores" already exists'):
        lake.create(name("scores"), pa.schema([("n", pa.int64())]), [ints_table(10, start=100)])

    assert read_all(lake, name("scores")).column("n").to_pylist() == [0, 1, 2]
    assert everything_under(lake) == before


def test_a_table_created_meanwhile_by_someone_else_is_never_replaced(lake, monkeypatch):
    """The early check passes, then another writer wins: the final step must notice."""
    lake.create(name("scores"), pa.schema([("n", pa.int64())]), [ints_table(3)])
    before = everything_under(lake)
    real_exists = LakeCatalog.exists
    calls = []

    def exists_missing_the_first_time(self, table):
        calls.append(table)
        return False if len(calls) == 1 else real_exists(self, table)

    monkeypatch.setattr(LakeCatalog, "exists", exists_missing_the_first_time)
    with pytest.raises(TableExistsError):
        lake.create(name("scores"), pa.schema([("n", pa.int64())]), [ints_table(10, start=100)])

    monkeypatch.undo()
    assert read_all(lake, name("scores")).column("n").to_pylist() == [0, 1, 2]
    assert everything_under(lake) == before


def test_a_failing_stream_leaves_no_table_and_no_temporary_files(lake):
    lake.create(name("other"), pa.schema([("n", pa.int64())]), [ints_table(3)])
    before = everything_under(lake)

    with pytest.raises(Boom):
        lake.create(name("scores"), SAMPLE_SCHEMA, failing_batches(sample_table(400)))

    assert not lake.exists(name("scores"))
    assert lake.list_tables("default") == ["other"]
    assert everything_under(lake) == before


def test_a_batch_that_does_not_fit_the_schema_leaves_nothing_behind(lake):
    wrong = pa.table({"other": [1, 2]})

    with pytest.raises(WarehouseError, match=r"has columns \['other'\]"):
        lake.create(name("scores"), pa.schema([("n", pa.int64())]), [ints_table(3), wrong])

    assert not lake.exists(name("scores"))
    assert everything_under(lake) in ([], ["default"])


def test_batches_of_compatible_types_are_cast_to_the_schema(lake):
    lake.create(name("scores"), pa.schema([("n", pa.int64())]), [pa.table({"n": pa.array([1, 2], pa.int8())})])

    assert lake.arrow_schema(name("scores")) == pa.schema([("n", pa.int64())])


def test_it_refuses_bad_column_names_before_writing_anything(lake):
    with pytest.raises(ColumnNameError, match='"Amount" must match'):
        lake.create(name("scores"), pa.schema([("id", pa.int64()), ("Amount", pa.float64())]), [])

    assert everything_under(lake) == []


def test_it_lists_schemas_and_complete_tables_only(lake):
    lake.create(name("b_table"), pa.schema([("n", pa.int64())]), [ints_table(1)])
    lake.create(name("a_table"), pa.schema([("n", pa.int64())]), [ints_table(1)])
    lake.create(name("t", schema="other"), pa.schema([("n", pa.int64())]), [ints_table(1)])
    root = lake.root
    # Leftovers and strays that must stay invisible: a hidden folder, a folder of parts without a
    # log (an unfinished write), folders whose names are not table names, and files.
    for folder in [".tmp-c_table-123", "unfinished", "Bad Name", "secret.csv"]:
        lake.fs.create_dir(f"{root}/default/{folder}")
        with lake.fs.open_output_stream(f"{root}/default/{folder}/part-00000.parquet") as f:
            f.write(b"PAR1")
    lake.fs.create_dir(f"{root}/.hidden/t/_delta_log")
    with lake.fs.open_output_stream(f"{root}/.hidden/t/_delta_log/{FIRST_COMMIT}") as f:
        f.write(b"{}")
    with lake.fs.open_output_stream(f"{root}/default/loose.parquet") as f:
        f.write(b"PAR1")

    assert lake.list_schemas() == ["default", "other"]
    assert lake.list_tables("default") == ["a_table", "b_table"]
    assert lake.list_tables("other") == ["t"]
    assert lake.list_tables("missing") == []
    assert not lake.exists(name("unfinished"))
    with pytest.raises(TableNameError):
        lake.list_tables("../default")


def test_an_empty_lake_lists_nothing(lake):
    assert lake.list_schemas() == []
    assert lake.list_tables("default") == []


def test_drop_removes_the_table_and_its_files(lake):
    lake.create(name("scores"), pa.schema([("n", pa.int64())]), [ints_table(3)])
    lake.create(name("kept"), pa.schema([("n", pa.int64())]), [ints_table(3)])

    lake.drop(name("scores"))

    assert not lake.exists(name("scores"))
    assert lake.list_tables("default") == ["kept"]
    assert not any("scores" in path for path in everything_under(lake))
    with pytest.raises(TableNotFoundError, match='"lake.default.scores" does not exist'):
        lake.drop(name("scores"))


def test_reading_a_missing_table_says_it_does_not_exist(lake):
    for call in (lake.arrow_schema, lake.columns, lake.row_count, lake.read_batches, lake.head):
        with pytest.raises(TableNotFoundError, match='"lake.default.missing" does not exist'):
            call(name("missing"))
    assert not lake.exists(name("missing"))


def test_it_refuses_a_log_that_points_outside_the_table(lake):
    lake.create(name("scores"), pa.schema([("n", pa.int64())]), [ints_table(3)])
    add = {"path": "../../secret.parquet", "size": 1, "partitionValues": {}, "modificationTime": 0, "dataChange": True}
    commit = f"{lake.root}/default/scores/_delta_log/{1:020d}.json"
    with lake.fs.open_output_stream(commit) as f:
        f.write(json.dumps({"add": add}).encode())

    with pytest.raises(WarehouseError, match="damaged log|cannot be read"):
        lake.row_count(name("scores"))
    with pytest.raises(WarehouseError, match="damaged log|cannot be read"):
        lake.read_batches(name("scores"))


# --- names never become paths ------------------------------------------------------------------

BAD_NAMES = ["prod.x;drop table y", '"secret.csv"', "read_csv('/etc/passwd')", "../x", "a..b", ""]


@pytest.mark.parametrize("bad", BAD_NAMES)
def test_bad_names_are_refused_before_the_filesystem_is_touched(tmp_path, bad):
    lake = LakeCatalog("lake", tmp_path.as_uri(), filesystem=Untouchable())

    for call in (lake.exists, lake.arrow_schema, lake.row_count, lake.read_batches, lake.head, lake.drop):
        with pytest.raises(TableNameError):
            call(bad)
    with pytest.raises(TableNameError):
        lake.create(bad, pa.schema([("n", pa.int64())]), [])
    with pytest.raises(TableNameError):
        lake.list_tables(bad)


def test_a_file_named_like_a_table_is_never_read(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "secret.csv").write_text("password\nhunter2\n")
    (tmp_path / "passwd").write_text("root:x:0:0\n")
    root = tmp_path / "lake"
    (root / "default").mkdir(parents=True)
    (root / "secret.csv").write_text("password\nhunter2\n")
    (root / "default" / "secret_csv.csv").write_text("password\nhunter2\n")
    (root / "default" / "passwd").write_text("root:x:0:0\n")
    pq.write_table(pa.table({"password": ["hunter2"]}), root / "default" / "secret.parquet")
    lake = LakeCatalog("lake", root.as_uri())

    with pytest.raises(TableNameError):
        lake.exists('"secret.csv"')
    with pytest.raises(TableNameError):
        lake.read_batches("read_csv('secret.csv')")
    for table in ["passwd", "secret_csv", "secret", "secret.csv", "default.secret_csv"]:
        assert not lake.exists(table)
        with pytest.raises(TableNotFoundError):
            lake.read_batches(table)
    assert lake.list_schemas() == ["default"]
    assert lake.list_tables("default") == []


# --- local disk and S3 specifics -----------------------------------------------------------------


def test_a_table_appears_with_its_commit_after_every_part_is_written(lake, monkeypatch):
    seen = []
    real_commit = lake_module.create_table_with_add_actions

    def commit(uri, schema, adds, **kwargs):
        parts = [p for p in everything_under(lake) if p.endswith(".parquet")]
        seen.append((lake.exists(name("scores")), sorted(a.path for a in adds), parts))
        real_commit(uri, schema, adds, **kwargs)

    monkeypatch.setattr(lake_module, "create_table_with_add_actions", commit)
    monkeypatch.setattr(lake_module, "ROW_GROUP_ROWS", 10)
    monkeypatch.setattr(lake_module, "ROW_GROUPS_PER_PART", 1)
    lake.create(name("scores"), pa.schema([("n", pa.int64())]), [ints_table(25)])

    [(existed, adds, parts)] = seen
    assert not existed  # invisible until the commit
    assert len(adds) == 3 and all(a.startswith("part-0000") for a in adds)
    assert parts == [f"default/scores/{a}" for a in adds]  # every part written before the commit
    assert lake.row_count(name("scores")) == 25
    assert any(p.endswith(f"_delta_log/{FIRST_COMMIT}") for p in everything_under(lake))


def test_of_two_writers_racing_for_one_new_table_exactly_one_wins(lake, monkeypatch):
    """Both pass the early check and write their parts; the commit (put-if-absent) decides."""
    barrier = threading.Barrier(2, timeout=30)
    real_commit = lake_module.create_table_with_add_actions

    def commit_together(*args, **kwargs):
        barrier.wait()
        real_commit(*args, **kwargs)

    monkeypatch.setattr(lake_module, "create_table_with_add_actions", commit_together)
    outcomes: dict[int, object] = {}

    def write(start: int) -> None:
        try:
            outcomes[start] = lake.create(name("scores"), pa.schema([("n", pa.int64())]), [ints_table(5, start=start)])
        except TableExistsError as exc:
            outcomes[start] = exc

    threads = [threading.Thread(target=write, args=(start,)) for start in (0, 100)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    winners = [start for start, outcome in outcomes.items() if outcome == 5]
    losers = [outcome for outcome in outcomes.values() if isinstance(outcome, TableExistsError)]
    assert len(winners) == 1 and len(losers) == 1, outcomes
    assert read_all(lake, name("scores")).column("n").to_pylist() == list(range(winners[0], winners[0] + 5))
    assert len([p for p in everything_under(lake) if p.endswith(".parquet")]) == 1  # the loser's part is gone


def test_a_table_is_read_by_delta_lake_alone_exactly_and_in_order(lake):
    lake.create(name("sample"), SAMPLE_SCHEMA, sample_table(1000).to_batches(max_chunksize=300))

    table = DeltaTable(lake.table_uri(name("sample")), storage_options=lake.storage_options)

    assert table.version() == 0
    assert pa.table(table.to_pyarrow_table()).equals(sample_table(1000))


def test_types_delta_lake_lacks_are_stored_in_the_nearest_one(lake):
    source = pa.table(
        {
            "tiny": pa.array([200, None], pa.uint8()),
            "huge": pa.array([2**40, 1], pa.uint64()),
            "at": pa.array([1_700_000_000_123_456_789, None], pa.timestamp("ns", tz="Europe/Paris")),
            "clock": pa.array([3600, 60], pa.time32("s")),
            "label": pa.array(["a", "b"], pa.large_string()).dictionary_encode(),
        }
    )
    lake.create(name("typed"), source.schema, [source])

    back = read_all(lake, name("typed"))
    assert back.schema == pa.schema(
        [
            ("tiny", pa.int16()),
            ("huge", pa.int64()),
            ("at", pa.timestamp("us", tz="UTC")),
            ("clock", pa.string()),
            ("label", pa.string()),
        ]
    )
    assert back.column("tiny").to_pylist() == [200, None]
    assert back.column("huge").to_pylist() == [2**40, 1]
    assert back.column("at").cast(pa.int64()).to_pylist() == [1_700_000_000_123_456, None]
    assert back.column("clock").to_pylist() == ["01:00:00", "00:01:00"]
    assert back.column("label").to_pylist() == ["a", "b"]


def test_a_column_delta_lake_cannot_hold_is_refused_before_writing(lake):
    with pytest.raises(WarehouseError, match='the column "took" has the type duration'):
        lake.create(name("typed"), pa.schema([("took", pa.duration("s"))]), [])
    with pytest.raises(WarehouseError, match='column "big"'):
        lake.create(
            name("typed"), pa.schema([("big", pa.uint64())]), [pa.table({"big": pa.array([2**64 - 1], pa.uint64())})]
        )

    assert not lake.exists(name("typed"))
    assert everything_under(lake) in ([], ["default"])


def test_on_s3_a_stray_file_in_a_table_folder_is_not_read(s3_lake):
    s3_lake.create(name("scores"), pa.schema([("n", pa.int64())]), [ints_table(3)])
    stray = f"{s3_lake.root}/default/scores/part-00001-{'0' * 32}.parquet"
    pq.write_table(pa.table({"n": [666]}), stray, filesystem=s3_lake.fs)

    assert read_all(s3_lake, name("scores")).column("n").to_pylist() == [0, 1, 2]
    assert s3_lake.row_count(name("scores")) == 3


def test_an_s3_lake_can_be_configured_by_its_url_alone(s3_endpoint, s3_filesystem, monkeypatch):
    """As settings do it: endpoint and region in the URL, keys from the environment."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    s3_filesystem.create_dir("by-url")
    url = f"s3://by-url/lake?region=us-east-1&scheme=http&endpoint_override={s3_endpoint}"
    lake = catalogs_from_config({"lake": url}, "lake").default

    lake.create("t", pa.schema([("n", pa.int64())]), [ints_table(3)])

    assert isinstance(lake.fs, pafs.S3FileSystem)
    assert lake.list_tables("default") == ["t"]
    assert s3_filesystem.get_file_info(f"by-url/lake/default/t/_delta_log/{FIRST_COMMIT}").is_file


# --- a table written in parts (batch jobs) -------------------------------------------------------


def test_parts_written_become_one_table_at_the_commit(lake):
    schema = pa.schema([("n", pa.int64())])
    first = lake.write_part(name("scores"), "00000-1-job", schema, ints_table(3))
    second = lake.write_part(name("scores"), "00001-1-job", schema, ints_table(2, start=3))
    other_types = pa.table({"n": pa.array([5, 6], pa.int32())})  # int32: cast to the table's int64
    third = lake.write_part(name("scores"), "00002-1-job", schema, other_types)
    assert not lake.exists(name("scores"))  # parts alone are no table

    assert lake.commit_parts(name("scores"), schema, [first, second, third]) == 7

    assert read_all(lake, name("scores")).column("n").to_pylist() == list(range(7))
    assert [p.rows for p in (first, second, third)] == [3, 2, 2]


def test_discarding_a_writers_parts_keeps_the_ones_asked_for_and_everyone_elses(lake):
    schema = pa.schema([("n", pa.int64())])
    kept = lake.write_part(name("scores"), "00000-1-mine", schema, ints_table(1))
    lake.write_part(name("scores"), "00000-2-mine", schema, ints_table(1))
    lake.write_part(name("scores"), "00000-1-theirs", schema, ints_table(1))

    assert lake.discard_parts(name("scores"), "mine", keep=frozenset({kept.name})) == 1

    left = sorted(p.rsplit("/", 1)[1] for p in everything_under(lake) if p.endswith(".parquet"))
    assert left == ["part-00000-1-mine.parquet", "part-00000-1-theirs.parquet"]
    with pytest.raises(WarehouseError, match="a part id"):
        lake.write_part(name("scores"), "../x", schema, ints_table(1))

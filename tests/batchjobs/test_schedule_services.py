"""Saving a schedule: every field checked, each error under its field's name; pause and resume."""

import pytest
from django.core.exceptions import ValidationError

from batchjobs.models import Schedule
from batchjobs.schedules import notify_urls, services
from tests.batchjobs.jobkit import make_input
from tests.batchjobs.schedulekit import make_schedule

pytestmark = pytest.mark.usefixtures("job_storage")


def errors_of(call) -> dict:
    with pytest.raises(ValidationError) as caught:
        call()
    return caught.value.message_dict


def test_a_schedule_is_saved_with_its_team_and_counts_due_times_from_its_creation(ready, user):
    schedule = make_schedule(ready, user, timezone="Europe/Paris", keep_last="3")
    schedule.refresh_from_db()
    assert (schedule.team, schedule.input_table, schedule.keep_last, schedule.enabled) == (
        ready.team,
        "prod.t.input",
        3,
        True,
    )
    assert schedule.last_due_at is not None and schedule.runs_started == 0


@pytest.mark.parametrize(
    ("field", "value", "words"),
    [
        ("cron", "0 2 * *", "five fields"),
        ("cron", "0 2 * * * *", "this one has 6"),
        ("cron", "61 * * * *", "out of range"),
        ("cron", "0 0 30 2 *", "0 0 30 2 * never comes: February has no 30th."),
        ("cron", "0 0 31 4,6 *", "never comes: no month has day 31 in months 4,6"),
        ("timezone", "Mars/Olympus", "is not a time zone name"),
        ("output_table_template", "prod.out.scores_{day}", "{day}"),
        ("output_table_template", "prod.out.scores_{date:%Y}", "{date:%Y}"),
        ("output_table_template", "prod.out.Scores_{run}", "must match"),
        ("output_table_template", "prod.out.scores", "same table"),
        ("output_table_template", "prod.out.scores_{date}", "same table"),  # due every minute below
        ("input_table", "prod.t.nowhere", "does not exist"),
        ("history_table", "prod.t.Bad-Name", "must match"),
        ("keep_last", "0", "1 or more"),
        ("keep_last", "10001", "at most 10,000"),
        ("notify_urls", ["json://hooks.example.com/"] * 21, "at most 20 URLs; this has 21"),
        ("notify_urls", ["json://hooks.example.com/" + "x" * 2000], "URL 1 has 2,025 characters; at most 2,000"),
        ("notify_urls", ["json://hooks.example.com/x", "not a url"], "URL 2"),
        ("notify_on", "sometimes", "failure, always"),
    ],
)
def test_each_bad_field_is_refused_under_its_name(ready, user, field, value, words):
    extra = {"cron": "* * * * *"} if value == "prod.out.scores_{date}" else {}
    errors = errors_of(lambda: make_schedule(ready, user, **{**extra, field: value}))
    assert list(errors) == [field], errors
    assert words in " ".join(errors[field])
    assert not Schedule.objects.exists()


def test_events_need_a_key_column_that_the_input_has(ready, user):
    errors = errors_of(lambda: make_schedule(ready, user, events_table="prod.ev.events"))
    assert list(errors) == ["event_key_column"]
    assert "Name the input's entity key column" in errors["event_key_column"][0]
    errors = errors_of(lambda: make_schedule(ready, user, events_table="prod.ev.events", event_key_column="customer"))
    assert "has no column customer; its columns are id, amount, country" in errors["event_key_column"][0]
    schedule = make_schedule(ready, user, events_table="prod.ev.events", event_key_column="id")
    assert (schedule.events_table, schedule.event_key_column) == ("prod.ev.events", "id")


def test_another_teams_input_table_does_not_exist_for_the_schedule(ready, user, outsider):
    from tables.models import TableRecord

    make_input("prod.t.theirs", 10)
    TableRecord.objects.create(name="prod.t.theirs", created_by=outsider, team=outsider.groups.get())
    errors = errors_of(lambda: make_schedule(ready, user, input_table="prod.t.theirs"))
    assert errors == {"input_table": ["The input table prod.t.theirs does not exist."]}


def test_the_next_runs_output_table_must_not_exist(ready, user):
    make_input("prod.out.scores_1", 3)
    errors = errors_of(lambda: make_schedule(ready, user, output_table_template="prod.out.scores_{run}"))
    assert "prod.out.scores_1 already exists" in errors["output_table_template"][0]


def test_notify_urls_are_kept_whole_and_a_masked_one_sent_back_keeps_its_secret(ready, user):
    secret = "json://hooks.example.com/T0KEN-SECRET?x=1"
    schedule = make_schedule(ready, user, notify_urls=[secret])
    assert notify_urls.masked(secret) == "json://hooks.example.com/…"
    services.schedule_update(schedule=schedule, notify_urls=["json://hooks.example.com/…", "json://other.example/"])
    schedule.refresh_from_db()
    assert schedule.notify_urls == [secret, "json://other.example/"]


def test_pause_then_resume_counts_due_times_from_the_resume(ready, user):
    schedule = make_schedule(ready, user)
    services.schedule_pause(schedule=schedule)
    assert schedule.enabled is False
    before = schedule.last_due_at
    services.schedule_resume(schedule=schedule)
    assert schedule.enabled is True and schedule.last_due_at > before


def test_a_second_schedule_of_the_same_name_is_refused(ready, user):
    make_schedule(ready, user)
    errors = errors_of(lambda: make_schedule(ready, user))
    assert errors == {"name": ["The model already has a schedule named nightly."]}


def test_a_history_or_events_table_must_be_new_or_made_by_the_teams_platform_jobs(ready, user, outsider):
    from tables.models import TableRecord

    make_input("prod.hist.outside", 3)  # made outside the platform: readable by everyone
    make_input("prod.hist.theirs", 3)
    TableRecord.objects.create(name="prod.hist.theirs", created_by=outsider, team=outsider.groups.get())
    make_input("prod.hist.ours", 3)
    TableRecord.objects.create(name="prod.hist.ours", created_by=user, team=ready.team)

    errors = errors_of(lambda: make_schedule(ready, user, history_table="prod.hist.outside"))
    assert errors == {
        "history_table": [
            "prod.hist.outside exists and was not made by your team's platform jobs or uploads: "
            "a history table must be new or your team's."
        ]
    }
    # Another team's table is taken, as an output name would be: it is not said to exist.
    errors = errors_of(lambda: make_schedule(ready, user, events_table="prod.hist.theirs", event_key_column="id"))
    assert errors == {"events_table": ["The name prod.hist.theirs is taken; choose another name."]}
    assert "exists" not in errors["events_table"][0]
    assert not Schedule.objects.exists()
    schedule = make_schedule(
        ready, user, history_table="prod.hist.ours", events_table="prod.ev.new", event_key_column="id"
    )
    assert (schedule.history_table, schedule.events_table) == ("prod.hist.ours", "prod.ev.new")
    # Saved again once the table it named is no longer the team's: refused on the field.
    TableRecord.objects.filter(name="prod.hist.ours").delete()
    errors = errors_of(lambda: services.schedule_update(schedule=schedule, name="renamed"))
    assert list(errors) == ["history_table"] and "prod.hist.ours exists and was not made" in errors["history_table"][0]

"""Writes for schedules: create, update, delete, pause, resume, run now. Every field is checked
when a schedule is saved, each error under its field's name."""

from __future__ import annotations

from datetime import datetime

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from batchjobs.choices import NotifyOn
from batchjobs.models import BatchJob, Schedule
from batchjobs.schedules import cron, notify_urls, selectors, tick
from builds.models import MLModel
from mlplatform.warehouse import WarehouseError
from tables import selectors as table_selectors

# The fields a user sets (the API's and the form's names).
FIELDS = (
    "name",
    "input_table",
    "output_table_template",
    "cron",
    "timezone",
    "enabled",
    "history_table",
    "events_table",
    "event_key_column",
    "keep_last",
    "notify_urls",
    "notify_on",
)
DEFAULTS = {
    "timezone": "UTC",
    "enabled": True,
    "history_table": "",
    "events_table": "",
    "event_key_column": "",
    "keep_last": None,
    "notify_urls": [],
    "notify_on": NotifyOn.FAILURE,
}


KEEP_LAST_MAX = 10_000
NOTIFY_URLS_MAX = 20
NOTIFY_URL_MAX = 2000


class _Errors(dict):
    def add(self, key: str, message: str) -> None:
        self.setdefault(key, []).append(message)


def _text(values: dict, key: str) -> str:
    value = values.get(key)
    return "" if value is None else str(value).strip()


def _table(errors: _Errors, key: str, text: str, *, team, append_as: str = ""):
    """The catalog and name of a table the schedule names, or None (an error is recorded). A table
    appended to (`append_as`: "a history table") must be new or the team's own."""
    try:
        catalog, name = table_selectors.resolve(text, field=key)
    except ValidationError as exc:
        errors.setdefault(key, []).extend(exc.message_dict[key])
        return None
    try:
        if append_as:
            refusal = table_selectors.append_refusal(team, catalog, name, what=append_as)
            if refusal:
                errors.add(key, refusal)
                return None
        elif catalog.exists(name) and not table_selectors.team_may_read(team, name):
            errors.add(key, table_selectors.taken(name))
            return None
    except WarehouseError as exc:
        errors.add(key, f"The catalog of {name} cannot be read: {exc}")
        return None
    return catalog, name


def _check_input(errors: _Errors, values: dict, *, team) -> list[str] | None:
    """The input table's columns (None when it cannot be read)."""
    text = _text(values, "input_table")
    if not text:
        errors.add("input_table", "Give the input table's name (catalog.schema.table).")
        return None
    try:
        catalog, name = table_selectors.resolve(text, field="input_table")
    except ValidationError as exc:
        errors.setdefault("input_table", []).extend(exc.message_dict["input_table"])
        return None
    try:
        # Another team's table does not exist for this schedule (as for its jobs).
        if not catalog.exists(name) or not table_selectors.team_may_read(team, name):
            errors.add("input_table", f"The input table {name} does not exist.")
            return None
        values["input_table"] = str(name)
        return [c.name for c in catalog.columns(name)]
    except WarehouseError as exc:
        errors.add("input_table", f"The input table {name} cannot be read: {exc}")
        return None


def _check_template(errors: _Errors, values: dict, *, team, runs_started: int, now: datetime) -> None:
    template = _text(values, "output_table_template")
    key = "output_table_template"
    if not template:
        errors.add(key, "Give the output table's name template, like prod.fraud.scores_{date}.")
        return
    problem = cron.template_error(template)
    if problem:
        errors.add(key, problem)
        return
    values[key] = template
    if "cron" in errors or "timezone" in errors:
        return  # rendered only for a valid due time
    first, second = cron.next_runs(values["cron"], values["timezone"], now, 2)
    name = cron.render(template, first, runs_started + 1)
    found = _table(errors, key, name, team=team)
    if found is None:
        if key in errors:
            errors[key][-1] = f"For the next run ({first:%Y-%m-%d %H:%M}) it renders {name[:120]}: {errors[key][-1]}"
        return
    catalog, table = found
    if str(table) == values.get("input_table"):
        errors.add(key, f"The next run's output table {table} is the input table.")
    elif catalog.exists(table):
        errors.add(key, f"The next run's output table {table} already exists; runs write new tables.")
    if cron.render(template, second, runs_started + 2) == name:
        errors.add(
            key,
            f"Two runs in a row would write the same table {table} (the second one would be refused): "
            "put {datetime} or {run} in the template.",
        )


def _clean(values: dict, *, model: MLModel, runs_started: int, now: datetime, schedule: Schedule | None) -> dict:
    """Every field checked at once: the cleaned values, or ValidationError with every error by field."""
    errors = _Errors()
    team = model.team
    values = {**values}
    name = _text(values, "name")
    if not name:
        errors.add("name", "Give the schedule a name.")
    elif len(name) > 100:
        errors.add("name", "A schedule's name has at most 100 characters.")
    else:
        taken = Schedule.objects.filter(model=model, name=name).exclude(pk=getattr(schedule, "pk", None))
        if taken.exists():
            errors.add("name", f"The model already has a schedule named {name}.")
    values["name"] = name
    values["cron"] = " ".join(_text(values, "cron").split())
    problem = cron.cron_error(values["cron"])
    if problem:
        errors.add("cron", problem)
    values["timezone"] = _text(values, "timezone") or "UTC"
    problem = cron.timezone_error(values["timezone"])
    if problem:
        errors.add("timezone", problem)
    columns = _check_input(errors, values, team=team)
    _check_template(errors, values, team=team, runs_started=runs_started, now=now)
    for key, append_as in (("history_table", "a history table"), ("events_table", "an events table")):
        text = _text(values, key)
        values[key] = text
        if text:
            found = _table(errors, key, text, team=team, append_as=append_as)
            if found:
                values[key] = str(found[1])
                if values[key] == values.get("input_table"):
                    errors.add(key, f"The {key.replace('_', ' ')} must differ from the input table.")
    key_column = _text(values, "event_key_column")
    values["event_key_column"] = key_column
    if values["events_table"] and not key_column:
        errors.add("event_key_column", "Name the input's entity key column: each event carries it.")
    elif key_column and columns is not None and key_column not in columns:
        errors.add(
            "event_key_column",
            f"The input table has no column {key_column[:63]}; its columns are {', '.join(columns)}.",
        )
    keep = values.get("keep_last")
    if keep in ("", None):
        values["keep_last"] = None
    else:
        try:
            values["keep_last"] = int(keep)
        except (TypeError, ValueError):
            values["keep_last"] = 0
        if not 1 <= values["keep_last"] <= KEEP_LAST_MAX or isinstance(keep, bool):
            errors.add(
                "keep_last",
                f"keep_last is a whole number of outputs to keep, 1 or more and at most {KEEP_LAST_MAX:,} "
                "(empty: keep all).",
            )
    urls = values.get("notify_urls") or []
    if not isinstance(urls, list) or not all(isinstance(u, str) for u in urls):
        errors.add("notify_urls", "notify_urls is a list of URLs (strings).")
        urls = []
    elif len(urls) > NOTIFY_URLS_MAX:
        errors.add("notify_urls", f"A schedule notifies at most {NOTIFY_URLS_MAX} URLs; this has {len(urls)}.")
        urls = []
    kept = list(schedule.notify_urls) if schedule else []
    cleaned = []
    for index, url in enumerate(u.strip() for u in urls):
        if not url:
            continue
        if len(url) > NOTIFY_URL_MAX:
            errors.add("notify_urls", f"URL {index + 1} has {len(url):,} characters; at most {NOTIFY_URL_MAX:,}.")
            continue
        # A masked URL sent back as it was shown keeps the stored one it stands for.
        same = [old for old in kept if notify_urls.masked(old) == url]
        if same:
            cleaned.append(same[0])
            kept.remove(same[0])
        elif not (why := notify_urls.refusal(url)):
            cleaned.append(url)
        else:
            errors.add("notify_urls", f"notify_urls: URL {index + 1} ({notify_urls.masked(url)}) is refused: {why}")
    values["notify_urls"] = cleaned
    if values.get("notify_on") not in NotifyOn.values:
        errors.add("notify_on", f"notify_on must be one of {', '.join(NotifyOn.values)}.")
    values["enabled"] = bool(values.get("enabled"))
    if errors:
        raise ValidationError(dict(errors))
    return {k: values[k] for k in FIELDS}


def schedule_create(*, model: MLModel, created_by: AbstractBaseUser, **fields) -> Schedule:
    unknown = set(fields) - set(FIELDS)
    if unknown:
        raise ValidationError({key: [f"{key} is not a schedule field."] for key in sorted(unknown)})
    now = timezone.now()
    values = _clean({**DEFAULTS, **fields}, model=model, runs_started=0, now=now, schedule=None)
    try:
        with transaction.atomic():
            # Due times count from now: a new schedule does not run the times before it existed.
            return Schedule.objects.create(
                model=model, team=model.team, created_by=created_by, last_due_at=now, **values
            )
    except IntegrityError:  # a concurrent create took the name
        raise ValidationError({"name": [f"The model already has a schedule named {values['name']}."]}) from None


def schedule_update(*, schedule: Schedule, **fields) -> Schedule:
    unknown = set(fields) - set(FIELDS)
    if unknown:
        raise ValidationError({key: [f"{key} is not a schedule field."] for key in sorted(unknown)})
    now = timezone.now()
    current = {key: getattr(schedule, key) for key in FIELDS}
    values = _clean(
        {**current, **fields}, model=schedule.model, runs_started=schedule.runs_started, now=now, schedule=schedule
    )
    timing_changed = (values["cron"], values["timezone"]) != (schedule.cron, schedule.timezone)
    resumed = values["enabled"] and not schedule.enabled
    for key, value in values.items():
        setattr(schedule, key, value)
    update_fields = [*FIELDS, "updated_at"]
    if timing_changed or resumed:  # the new rule's due times count from now: none replayed
        schedule.last_due_at = now
        update_fields.append("last_due_at")
    try:
        schedule.save(update_fields=update_fields)
    except IntegrityError:
        raise ValidationError({"name": [f"The model already has a schedule named {values['name']}."]}) from None
    return schedule


def schedule_delete(*, schedule: Schedule) -> None:
    """Its runs go with it; its jobs stay (they lose the link)."""
    schedule.delete()


def schedule_pause(*, schedule: Schedule) -> Schedule:
    Schedule.objects.filter(pk=schedule.pk).update(enabled=False, updated_at=timezone.now())
    schedule.refresh_from_db()
    return schedule


def schedule_resume(*, schedule: Schedule) -> Schedule:
    """Runs again from the next due time: the times that passed while paused are not replayed."""
    now = timezone.now()
    Schedule.objects.filter(pk=schedule.pk, enabled=False).update(enabled=True, last_due_at=now, updated_at=now)
    schedule.refresh_from_db()
    return schedule


def run_now_refusal(schedule: Schedule) -> str:
    """Why Run now is refused ("" when it is not): one run at a time per schedule."""
    job = selectors.active_job(schedule)
    return tick.busy_refusal(job) if job else ""


def schedule_run_now(*, schedule: Schedule, user: AbstractBaseUser) -> BatchJob:
    """A run now, outside the cron: the job, or ValidationError (refused while a run is active, or
    by the job's checks, then recorded as a run). The busy check is start_run's, under its lock."""
    run = tick.start_run(schedule, due=timezone.now(), manual=True, requested_by=user)
    if run.job is None:
        raise ValidationError({"schedule": [run.message]})
    return run.job

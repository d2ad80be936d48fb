"""Table pages: list, look at, upload, drop. Thin: parse, call a service or selector, render."""

from __future__ import annotations

from functools import wraps

from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods

from mlplatform.forms import add_service_errors
from mlplatform.warehouse import CatalogNotFoundError, WarehouseError
from tables import downloads, selectors, services
from tables.forms import TableDropForm, TableUploadForm


def warehouse_errors(view):
    """A catalog that cannot be read (a database down, a damaged table) is a page that says so."""

    @wraps(view)
    def wrapper(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        try:
            return view(request, *args, **kwargs)
        except WarehouseError as exc:
            return render(request, "tables/warehouse_error.html", {"error": str(exc)}, status=503)

    return wrapper


@warehouse_errors
def table_list(request: HttpRequest) -> HttpResponse:
    registry = selectors.catalogs()
    catalog = request.GET.get("catalog") or registry.default_name
    try:
        listing = selectors.table_listing(user=request.user, catalog_name=catalog)
    except CatalogNotFoundError:
        raise Http404("No such catalog.") from None
    except WarehouseError as exc:  # e.g. a PostgreSQL catalog that is down: say so, keep the page
        listing, error = [], f"The catalog {catalog} cannot be read right now: {exc}"
    else:
        error = ""
    context = {
        "catalogs": registry.names(),
        "catalog": catalog,
        "listing": listing,
        "error": error,
        "url": registry.get(catalog).display_url,
    }
    return render(request, "tables/table_list.html", context)


@warehouse_errors
def table_detail(request: HttpRequest, name: str) -> HttpResponse:
    try:
        detail = selectors.table_get(name, user=request.user)
        columns, rows = selectors.readable_preview(
            *selectors.table_preview(name, user=request.user), first=selectors.leading_columns(detail.name)
        )
    except (ValidationError, selectors.TableMissing):
        raise Http404("No such table.") from None
    context = {
        "table": detail,
        "preview_columns": columns,
        "preview_rows": rows,
        "preview_limit": selectors.PREVIEW_ROWS,
    }
    return render(request, "tables/table_detail.html", context)


@require_http_methods(["GET"])
@warehouse_errors
def table_download(request: HttpRequest, name: str) -> HttpResponse:
    """The table as a CSV or Parquet file (?format=csv|parquet), streamed."""
    try:
        wanted = downloads.download_request(request.GET)
    except ValidationError as exc:
        message = " ".join(m for messages in exc.message_dict.values() for m in messages)
        return render(request, "400.html", {"message": message, "title": "Bad download request"}, status=400)
    try:
        download = downloads.table_download(name, user=request.user, request=wanted)
    except (ValidationError, selectors.TableMissing):
        raise Http404("No such table.") from None
    return downloads.streaming_response(download)


@require_http_methods(["GET", "POST"])
@warehouse_errors
def table_upload(request: HttpRequest) -> HttpResponse:
    form = TableUploadForm(initial={"name": request.GET.get("name", "")})
    status = 200
    if request.method == "POST":
        form = TableUploadForm(request.POST, request.FILES)
        if form.is_valid():
            upload = form.cleaned_data["file"]
            try:
                result = services.table_upload(
                    name=form.cleaned_data["name"],
                    source=services.upload_source(upload),
                    filename=upload.name,
                    created_by=request.user,
                )
            except ValidationError as exc:
                add_service_errors(form, exc)
            except services.TableConflict as exc:
                form.add_error("name", str(exc))
            else:
                renamed = ", ".join(f"{old} → {new}" for old, new in result.renamed.items())
                messages.success(
                    request,
                    f"Table {result.name} created with {result.rows:,} rows."
                    + (f" Columns renamed: {renamed}." if renamed else ""),
                )
                return redirect("tables:detail", name=str(result.name))
        status = 400
    return render(request, "tables/table_upload.html", {"form": form}, status=status)


@warehouse_errors
def table_check_name(request: HttpRequest) -> HttpResponse:
    """Inline check of a table name while the user types it (htmx)."""
    name = request.GET.get("name", "").strip()
    message, ok = "", False
    if name:
        try:
            catalog, table = selectors.resolve(name)
            exists = catalog.exists(table)
        except ValidationError as exc:
            message = exc.message_dict["name"][0]
        except WarehouseError as exc:
            message = str(exc)
        else:
            ok = not exists
            message = f"The table {table} already exists." if exists else f"Will create {table}."
            if exists and not selectors.may_read(request.user, table):
                message = selectors.taken(table)
    return render(request, "tables/_name_check.html", {"message": message, "ok": ok})


@require_http_methods(["GET", "POST"])
@warehouse_errors
def table_drop(request: HttpRequest, name: str) -> HttpResponse:
    try:
        detail = selectors.table_get(name, user=request.user)
    except (ValidationError, selectors.TableMissing):
        raise Http404("No such table.") from None
    if not selectors.may_drop(request.user, detail.name):
        raise PermissionDenied(f"Only whoever created {detail.name} here, its model's team or an admin can drop it.")
    form = TableDropForm()
    if request.method == "POST":
        form = TableDropForm(request.POST)
        if form.is_valid():
            try:
                dropped = services.table_drop(
                    name=str(detail.name), confirmation=form.cleaned_data["confirm"], user=request.user
                )
            except ValidationError as exc:
                add_service_errors(form, exc)
            except selectors.TableMissing:
                raise Http404("No such table.") from None
            else:
                messages.success(request, f"Table {dropped} dropped.")
                return redirect(f"{reverse('tables:list')}?catalog={dropped.catalog}")
    return render(
        request, "tables/table_drop.html", {"table": detail, "form": form}, status=400 if form.errors else 200
    )

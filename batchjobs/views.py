"""HTML pages of the batchjobs app. Thin: parse, call a service or selector, render."""

from __future__ import annotations

from functools import wraps

from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods

from batchjobs import tables
from batchjobs.forms import TableDropForm, TableUploadForm
from mlplatform.forms import add_service_errors
from mlplatform.warehouse import CatalogNotFoundError, WarehouseError


def warehouse_errors(view):
    """A catalog that cannot be read (a database down, a damaged table) is a page that says so."""

    @wraps(view)
    def wrapper(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        try:
            return view(request, *args, **kwargs)
        except WarehouseError as exc:
            return render(request, "batchjobs/warehouse_error.html", {"error": str(exc)}, status=503)

    return wrapper


@warehouse_errors
def table_list(request: HttpRequest) -> HttpResponse:
    registry = tables.catalogs()
    catalog = request.GET.get("catalog") or registry.default_name
    try:
        listing = tables.table_listing(catalog_name=catalog)
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
    return render(request, "batchjobs/table_list.html", context)


@warehouse_errors
def table_detail(request: HttpRequest, name: str) -> HttpResponse:
    try:
        detail = tables.table_get(name)
        columns, rows = tables.table_preview(name)
    except (ValidationError, tables.TableMissing):
        raise Http404("No such table.") from None
    context = {"table": detail, "preview_columns": columns, "preview_rows": rows, "preview_limit": tables.PREVIEW_ROWS}
    return render(request, "batchjobs/table_detail.html", context)


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
                result = tables.table_upload(
                    name=form.cleaned_data["name"],
                    source=tables.upload_source(upload),
                    filename=upload.name,
                    created_by=request.user,
                )
            except ValidationError as exc:
                add_service_errors(form, exc)
            except tables.TableConflict as exc:
                form.add_error("name", str(exc))
            else:
                renamed = ", ".join(f"{old} → {new}" for old, new in result.renamed.items())
                messages.success(
                    request,
                    f"Table {result.name} created with {result.rows:,} rows."
                    + (f" Columns renamed: {renamed}." if renamed else ""),
                )
                return redirect("batchjobs:table-detail", name=str(result.name))
        status = 400
    return render(request, "batchjobs/table_upload.html", {"form": form}, status=status)


@warehouse_errors
def table_check_name(request: HttpRequest) -> HttpResponse:
    """Inline check of a table name while the user types it (htmx)."""
    name = request.GET.get("name", "").strip()
    message, ok = "", False
    if name:
        try:
            catalog, table = tables.resolve(name)
            exists = catalog.exists(table)
        except ValidationError as exc:
            message = exc.message_dict["name"][0]
        except WarehouseError as exc:
            message = str(exc)
        else:
            ok = not exists
            message = f"The table {table} already exists." if exists else f"Will create {table}."
    return render(request, "batchjobs/_name_check.html", {"message": message, "ok": ok})


@require_http_methods(["GET", "POST"])
@warehouse_errors
def table_drop(request: HttpRequest, name: str) -> HttpResponse:
    try:
        detail = tables.table_get(name)
    except (ValidationError, tables.TableMissing):
        raise Http404("No such table.") from None
    if not tables.may_drop(request.user, detail.name):
        raise PermissionDenied(f"Only whoever created {detail.name} here, its model's team or an admin can drop it.")
    form = TableDropForm()
    if request.method == "POST":
        form = TableDropForm(request.POST)
        if form.is_valid():
            try:
                dropped = tables.table_drop(
                    name=str(detail.name), confirmation=form.cleaned_data["confirm"], user=request.user
                )
            except ValidationError as exc:
                add_service_errors(form, exc)
            except tables.TableMissing:
                raise Http404("No such table.") from None
            else:
                messages.success(request, f"Table {dropped} dropped.")
                return redirect(f"{reverse('batchjobs:tables')}?catalog={dropped.catalog}")
    return render(
        request, "batchjobs/table_drop.html", {"table": detail, "form": form}, status=400 if form.errors else 200
    )

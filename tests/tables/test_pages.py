"""The tables pages: list, detail with a preview, upload, the name checked while typing, drop."""

import io

import pytest
from django.urls import reverse

from tables import selectors as table_selectors
from tables import services as table_services
from tests.tables.tablekit import CSV, csv_file


def test_the_tables_pages_list_show_and_preview(web):
    table_services.table_upload(name="prod.sales.orders", source=io.BytesIO(CSV), filename="o.csv")
    listing = web.get(reverse("tables:list")).content.decode()
    assert "prod.sales.orders" in listing and ">3<" in listing
    page = web.get(reverse("tables:detail", args=["prod.sales.orders"])).content.decode()
    assert "transaction_id" in page and "int64" in page and "10.5" in page
    assert 'class="null">null' in page
    assert web.get(reverse("tables:detail", args=["prod.sales.nothing"])).status_code == 404
    assert web.get(reverse("tables:detail", args=["Bad.Name"])).status_code == 404


def test_uploading_from_the_page(web, user):
    response = web.post(reverse("tables:upload"), {"name": "prod.s.up", "file": csv_file()})
    assert response.status_code == 302
    assert response.url == reverse("tables:detail", args=["prod.s.up"])
    assert table_selectors.table_get("prod.s.up", user=user).rows == 3
    bad = web.post(reverse("tables:upload"), {"name": "prod.S.up", "file": csv_file()})
    assert bad.status_code == 400
    assert "the schema part &quot;S&quot; must match" in bad.content.decode()


def test_the_name_is_checked_while_typing(web):
    html = web.get(reverse("tables:check-name"), {"name": "prod.X.y"}, HTTP_HX_REQUEST="true")
    assert "<html" not in html.content.decode() and "the schema part" in html.content.decode()
    ok = web.get(reverse("tables:check-name"), {"name": "prod.x.y"}).content.decode()
    assert "Will create prod.x.y" in ok


def test_dropping_from_the_page_needs_the_typed_name(web, user):
    table_services.table_upload(name="prod.s.keep", source=io.BytesIO(CSV), filename="k.csv", created_by=user)
    url = reverse("tables:drop", args=["prod.s.keep"])
    assert "Type" in web.get(url).content.decode()
    wrong = web.post(url, {"confirm": "prod.s.other"})
    assert wrong.status_code == 400 and "Type the table name prod.s.keep to confirm" in wrong.content.decode()
    assert table_selectors.table_get("prod.s.keep", user=user).rows == 3
    assert web.post(url, {"confirm": "prod.s.keep"}).status_code == 302
    with pytest.raises(table_selectors.TableMissing):
        table_selectors.table_get("prod.s.keep", user=user)


def test_model_output_in_tables_is_escaped(web):
    table_services.table_upload(
        name="prod.s.evil", source=io.BytesIO(b"note\n<script>alert(1)</script>\n"), filename="e.csv"
    )
    html = web.get(reverse("tables:detail", args=["prod.s.evil"])).content.decode()
    assert "<script>alert(1)</script>" not in html and "&lt;script&gt;" in html


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        (0.0, "0"),
        (3.0, "3"),
        (0.8333333333333334, "0.8333"),
        (123456.7, "123457"),
        (0.000012345678, "1.235e-05"),
        (float("nan"), float("nan")),
        (7, 7),
        ("text", "text"),
        ([0.5, 0.123456], ["0.5", "0.1235"]),
    ],
)
def test_a_preview_rounds_floats_to_four_significant_digits_for_reading(value, shown):
    from tables.selectors import readable

    got = readable(value)
    assert got == shown or (got != got and shown != shown)  # NaN stays NaN

"""In a browser: upload a CSV, see it listed, open it, preview its rows, drop it."""

import pytest
from playwright.sync_api import expect

from tables import selectors as table_selectors
from tests.e2e.conftest import login, shoot
from tests.factories import UserFactory

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True, serialized_rollback=True)]


@pytest.fixture(autouse=True)
def _lake(e2e_lake):
    """Tables in a lake of this test's own."""


def test_upload_list_open_preview_and_drop_a_csv(page, tmp_path):
    carol = UserFactory(username="carol", password="pw-for-tests")
    csv = tmp_path / "customers.csv"
    csv.write_text("customer_id,Segment,spend\n1,gold,120.5\n2,silver,\n3,<b>bronze</b>,7\n")
    login(page, "carol", "pw-for-tests")
    page.click("nav.mainnav >> text=Tables")
    page.click("text=+ Upload a table")
    name = page.locator("input[name=name]")
    name.fill("prod.Sandbox.customers")
    expect(page.locator("#name-check")).to_contain_text('the schema part "Sandbox" must match')
    name.fill("prod.sandbox.customers")
    expect(page.locator("#name-check")).to_contain_text("Will create prod.sandbox.customers")
    page.set_input_files("input[name=file]", str(csv))
    page.click("main button:has-text('Upload')")

    expect(page.locator(".flash")).to_contain_text("Table prod.sandbox.customers created with 3 rows")
    expect(page.locator(".flash")).to_contain_text("Segment → segment")
    expect(page.locator("table.data tbody tr")).to_have_count(3)
    expect(page.locator("table.data")).to_contain_text("<b>bronze</b>")  # shown as text, not markup
    shoot(page, "30-table-uploaded")

    page.click("nav.mainnav >> text=Tables")
    row = page.locator("tr", has_text="prod.sandbox.customers")
    expect(row).to_contain_text("3")
    row.locator("a").click()
    expect(page.locator("h1")).to_have_text("prod.sandbox.customers")

    page.click("text=Drop…")
    page.fill("#id_confirm", "prod.sandbox.wrong")
    page.click("button:has-text('Drop table')")
    expect(page.locator("#confirm-error")).to_contain_text("Type the table name prod.sandbox.customers")
    assert table_selectors.table_get("prod.sandbox.customers", user=carol).rows == 3
    page.fill("#id_confirm", "prod.sandbox.customers")
    page.click("button:has-text('Drop table')")
    expect(page.locator(".flash")).to_contain_text("Table prod.sandbox.customers dropped")
    expect(page.locator("main")).not_to_contain_text("prod.sandbox.customers created")
    with pytest.raises(table_selectors.TableMissing):
        table_selectors.table_get("prod.sandbox.customers", user=carol)
    assert page.dialogs == []

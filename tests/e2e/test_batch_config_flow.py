"""The first flow a data scientist meets: log in, open the demo model, set a build's batch config."""

import io

import pytest
from django.conf import settings
from django.core.management import call_command
from playwright.sync_api import expect

from builds.models import BatchConfig, MLModel
from tests.e2e.conftest import login, shoot
from tests.factories import BuildFactory

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True, serialized_rollback=True)]


@pytest.fixture
def demo():
    call_command("load_demo", stdout=io.StringIO())
    model = MLModel.objects.get(model_id="ds-premium-fraud-detection")
    # A second verified build to move the batch config to.
    build = BuildFactory(
        model=model, number=2, entrypoint="fraud_model.model:FraudModel", schema=model.builds.get(number=1).schema
    )
    return model, build, (settings.DATA_DIR / "demo_password").read_text()


def test_set_batch_config_from_the_builds_tab(page, demo):
    model, build, password = demo
    login(page, "demo", password)
    shoot(page, "01-models")
    page.click("#model-table >> text=ds-premium-fraud-detection")
    expect(page.locator("h1")).to_have_text("ds-premium-fraud-detection")
    page.click("nav.tabs >> text=Builds")
    row = page.locator("#build-2")
    expect(row).to_contain_text("Succeeded")
    expect(row).not_to_contain_text("Used in Batch")
    expect(page.locator("#build-1")).to_contain_text("Used in Batch")
    shoot(page, "02-builds")

    row.locator("summary").click()
    row.locator("text=Set Batch Config").click()
    modal = page.locator("dialog#modal")
    expect(modal).to_be_visible()
    expect(modal).to_contain_text("does not deploy or run the model")
    modal.locator("#id_deployment_name").fill("fraud-premium-v2")
    modal.locator("#id_instance_type").select_option("ml.c5.2xlarge")
    # The form starts from the active config; its variables show, so the advanced part is open.
    expect(modal.locator("details.advanced")).to_have_attribute("open", "")
    expect(modal.locator("input[name=env_key]").first).to_have_value("FRAUD_THRESHOLD")
    expect(modal.locator(".advanced")).to_contain_text("TensorFlow models must use ONE")
    modal.locator("input[value=ONE]").check()
    keys = modal.locator("input[name=env_key]")
    values = modal.locator("input[name=env_value]")
    keys.nth(0).fill("FRAUD_THRESHOLD")
    values.nth(0).fill("0.35")
    modal.locator("text=+ Add variable").click()
    keys.last.fill("LD_PRELOAD")
    values.last.fill("evil.so")
    modal.locator("#id_deployment_name").fill("Fraud Premium!")
    shoot(page, "03-modal")
    page.set_viewport_size({"width": 1280, "height": 520})  # a laptop's window: the modal scrolls to Deploy
    modal.locator("button:has-text('Deploy')").click()

    # Refused in place, every error at once next to its field (the first one scrolled into view),
    # nothing saved.
    expect(modal.locator("#env-error")).to_contain_text("'LD_PRELOAD' is reserved by the platform")
    expect(modal.locator("#deployment_name-error")).to_contain_text("lowercase letters, digits and hyphens")
    expect(modal.locator("#deployment_name-error")).to_be_in_viewport()
    assert BatchConfig.objects.get(is_active=True).build.number == 1
    shoot(page, "04-modal-error")
    page.set_viewport_size({"width": 1440, "height": 900})
    modal.locator("#id_deployment_name").fill("fraud-premium-v2")
    modal.locator(".env-row:has(input[value=LD_PRELOAD]) [data-remove-env]").click()
    expect(modal.locator("input[value=LD_PRELOAD]")).to_have_count(0)
    modal.locator("button:has-text('Deploy')").click()

    page.wait_for_url(f"**/models/{model.model_id}/builds/")
    expect(page.locator(".flash")).to_contain_text("Nothing was deployed or run")
    expect(page.locator("#build-2")).to_contain_text("Used in Batch")
    expect(page.locator("#build-1")).not_to_contain_text("Used in Batch")
    expect(page.locator(".active-config")).to_contain_text("fraud-premium-v2")
    shoot(page, "05-used-in-batch")
    config = BatchConfig.objects.get(is_active=True)
    assert (config.build, config.deployment_name, config.instance_type.name, config.processes, config.env) == (
        build,
        "fraud-premium-v2",
        "ml.c5.2xlarge",
        "ONE",
        {"FRAUD_THRESHOLD": "0.35"},
    )
    assert BatchConfig.objects.count() == 2  # the old one is history

    page.click("nav.tabs >> text=Overview")
    expect(page.locator("main")).to_contain_text("fraud-premium-v2")
    expect(page.locator("main")).to_contain_text("FRAUD_THRESHOLD")
    shoot(page, "06-overview")
    assert page.dialogs == []

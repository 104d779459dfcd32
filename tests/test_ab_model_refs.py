"""create_test checks model references through the registry port: a model the registry
knows must have the named version or alias; models it has never seen are taken as given."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from support.databases import open_services

from neural.mlops.server.errors import NotFound
from neural.mlops.server.experiments.spec import CreateSpec
from neural.mlops.server.registry.service import RegisterSpec
from neural.mlops.server.services import Services


@pytest.fixture
async def services(tmp_path: Path) -> AsyncIterator[Services]:
    s = await open_services(tmp_path / "store")
    await s.registry.register_model(RegisterSpec(name="fraud", version="v1", created_by="ds@x.com",
                                                 artifact_uri="s3://bucket/model.pt"))
    await s.registry.set_alias("fraud", "champion", "v1", "ds@x.com")
    try:
        yield s
    finally:
        await s.close()


def _spec(control: str, treatment: str) -> CreateSpec:
    return CreateSpec(name="refs", control_variant=control, treatment_variant=treatment)


@pytest.mark.parametrize("treatment", ["fraud:v1", "fraud:champion", "fraud", "other:v7"])
async def test_a_known_version_alias_or_unknown_model_is_accepted(
    services: Services, treatment: str
) -> None:
    test = await services.experiments.create_test(_spec("fraud:v1", treatment))
    assert test.treatment_variant == treatment


@pytest.mark.parametrize("treatment", ["fraud:v2", "fraud:@champion"])
async def test_a_missing_version_of_a_known_model_names_the_argument(
    services: Services, treatment: str
) -> None:
    with pytest.raises(NotFound, match="treatment_variant: model 'fraud' has no version or alias"):
        await services.experiments.create_test(_spec("fraud:v1", treatment))


async def test_the_variants_form_names_the_variants_argument(services: Services) -> None:
    spec = CreateSpec(name="refs", variants=[("control", "fraud:v1", 0.5), ("b", "fraud:v3", 0.5)])
    with pytest.raises(NotFound) as err:
        await services.experiments.create_test(spec)
    assert err.value.field == "variants"

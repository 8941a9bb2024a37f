"""VmTarget parsing: resource IDs, portal URLs, and the errors for bad input."""

from __future__ import annotations

import contextlib
import string

import pytest
from hypothesis import given
from hypothesis import strategies as st

from wac_azure import InvalidResourceIdError, VmTarget, WacAzureError

SUB = "0b1f6471-1bf0-4dda-aec3-cb9272f09590"
VM_ID = (
    f"/subscriptions/{SUB}/resourceGroups/rg-Prod/providers/Microsoft.Compute/virtualMachines/Vm1"
)


def test_parse_resource_id_keeps_name_case() -> None:
    t = VmTarget.parse(VM_ID)
    assert (t.subscription_id, t.resource_group, t.name) == (SUB, "rg-Prod", "Vm1")
    assert str(t) == VM_ID
    assert t.resource_id == VM_ID


def test_segment_names_are_case_insensitive() -> None:
    odd = VM_ID.replace("resourceGroups", "RESOURCEGROUPS").replace(
        "Microsoft.Compute/virtualMachines", "microsoft.compute/VIRTUALMACHINES"
    )
    assert VmTarget.parse(odd) == VmTarget.parse(VM_ID)
    assert str(VmTarget.parse(odd)) == VM_ID


def test_subscription_is_normalised_to_lower_case() -> None:
    assert VmTarget.parse(VM_ID.replace(SUB, SUB.upper())).subscription_id == SUB


def test_trailing_slash_and_whitespace_are_accepted() -> None:
    assert VmTarget.parse(f"  {VM_ID}/ \n") == VmTarget.parse(VM_ID)


@pytest.mark.parametrize(
    "url",
    [
        f"https://portal.azure.com/#@contoso.onmicrosoft.com/resource{VM_ID}/overview",
        f"https://portal.azure.com/#@contoso.onmicrosoft.com/resource{VM_ID}",
        f"https://portal.azure.com/#view/resource{VM_ID}/networking",
        f"https://ms.portal.azure.com/#@72f988bf/resource{VM_ID.replace('/', '%2F')}/overview",
    ],
)
def test_parse_portal_urls(url: str) -> None:
    assert VmTarget.parse(url) == VmTarget.parse(VM_ID)


def test_from_parts_and_hashing() -> None:
    t = VmTarget.from_parts(SUB, "rg-Prod", "Vm1")
    assert t == VmTarget.parse(VM_ID)
    assert len({t, VmTarget.parse(VM_ID)}) == 1
    with pytest.raises(AttributeError):
        t.name = "other"  # type: ignore[misc]


@pytest.mark.parametrize(
    ("text", "part", "words"),
    [
        (VM_ID.replace(SUB, "not-a-guid"), "subscription", "not a GUID"),
        (VM_ID.replace("rg-Prod", "r" * 91), "resourceGroups", "at most 90"),
        (VM_ID.replace("rg-Prod", "rg%23x"), "resourceGroups", "'#'"),
        (VM_ID.replace("rg-Prod", "rg."), "resourceGroups", "ends with a period"),
        (
            VM_ID.replace(
                "Microsoft.Compute/virtualMachines", "Microsoft.Network/networkInterfaces"
            ),
            "provider",
            "not a Microsoft.Compute resource",
        ),
        (
            VM_ID.replace("virtualMachines", "virtualMachineScaleSets"),
            "type",
            "not a virtual machine",
        ),
        (VM_ID + "/extensions/AdminCenter", "trailing", "trailing path"),
        (f"/subscriptions/{SUB}/resourceGroups/rg1", "provider", "incomplete"),
        ("vm1", "id", "neither a resource ID"),
        ("", "id", "empty"),
        (VM_ID.replace("Vm1", "vm*1"), "name", "forbidden"),
        (VM_ID.replace("Vm1", "v" * 65), "name", "at most 64"),
        (VM_ID.replace("Vm1", "vm1-"), "name", "may not"),
        ("https://example.com/#@x/resource" + VM_ID, "url", "not an Azure portal URL"),
        ("https://portal.azure.com/#home", "url", "does not point at a resource"),
    ],
)
def test_bad_input_names_the_wrong_part(text: str, part: str, words: str) -> None:
    with pytest.raises(InvalidResourceIdError) as info:
        VmTarget.parse(text)
    assert info.value.part == part
    assert words in str(info.value)
    assert isinstance(info.value, ValueError)
    assert isinstance(info.value, WacAzureError)


def test_non_string_input_is_a_typed_error() -> None:
    with pytest.raises(InvalidResourceIdError):
        VmTarget.parse(42)  # type: ignore[arg-type]
    with pytest.raises(InvalidResourceIdError):
        VmTarget.from_parts(SUB, None, "vm")  # type: ignore[arg-type]


_names = st.text(alphabet=string.ascii_letters + string.digits + "-_.()", min_size=1, max_size=90)
_vm_names = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9._-]{0,20}[A-Za-z0-9]", fullmatch=True)


@given(st.uuids(), _names, _vm_names)
def test_round_trip(sub: object, rg: str, vm: str) -> None:
    rid = (
        f"/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.Compute/virtualMachines/{vm}"
    )
    if rg.endswith("."):
        # Azure forbids a resource-group name ending with a period.
        with pytest.raises(InvalidResourceIdError) as info:
            VmTarget.parse(rid)
        assert info.value.part == "resourceGroups"
        return
    t = VmTarget.parse(rid)
    assert VmTarget.parse(str(t)) == t
    assert (t.resource_group, t.name) == (rg, vm)


@given(st.text(max_size=300))
def test_fuzz_never_raises_anything_but_our_error(text: str) -> None:
    with contextlib.suppress(InvalidResourceIdError):
        VmTarget.parse(text)


@given(
    st.lists(
        st.sampled_from(
            [
                "subscriptions",
                SUB,
                "resourceGroups",
                "rg",
                "providers",
                "Microsoft.Compute",
                "virtualMachines",
                "vm",
                "",
                "x",
                "%2F",
                "#",
                "?a=b",
                "https:",
                "portal.azure.com",
                "resource",
                "@t",
            ]
        ),
        max_size=12,
    ),
    st.sampled_from(["/", "https://portal.azure.com/#@t/resource/", "https://portal.azure.com/#"]),
)
def test_fuzz_structured_junk(parts: list[str], prefix: str) -> None:
    try:
        t = VmTarget.parse(prefix + "/".join(parts))
    except InvalidResourceIdError:
        return
    assert t.name
    assert t.resource_group
    assert t.subscription_id == SUB

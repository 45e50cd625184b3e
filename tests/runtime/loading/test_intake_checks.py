"""Public intakes are checked at load (runtime/loading/intake_checks.py): each mistake is one exact
`file:line:col: message`; webhook effects' new keys too."""

from __future__ import annotations

from pathlib import Path

import pytest

from runtime.loading.loader import load_pack
from runtime.loading.problems import DefinitionError
from tests.runtime.intake.pack import ACCOUNT, APP, LEAD
from tests.support import write_files, write_pack

GOOD = """\
intake: contact
form: lead
fields: [company, email, phone]
defaults: {source: web}
as_role: marketing
"""


def pack_with(tmp_path: Path, files: dict[str, str]) -> Path:
    pack = write_pack(tmp_path / "pack", {"lead": LEAD, "account": ACCOUNT})
    (pack / "app.yaml").write_text(APP, encoding="utf-8")
    return write_files(pack, files)


def problems(tmp_path: Path, files: dict[str, str]) -> list[str]:
    with pytest.raises(DefinitionError) as caught:
        load_pack(pack_with(tmp_path, files))
    return [str(p) for p in caught.value.problems]


def test_a_sound_intake_loads_from_its_folder_or_the_app_file(tmp_path: Path) -> None:
    app = load_pack(pack_with(tmp_path, {"intakes/contact.yaml": GOOD}))
    intake = app.intake("contact")
    assert intake is not None and intake.limit() == (10, 60) and intake.honeypot == "homepage"
    listed = APP + "intakes:\n  - " + GOOD.replace("\n", "\n    ").rstrip() + "\n"
    (tmp_path / "two").mkdir()
    assert load_pack(pack_with(tmp_path / "two", {"app.yaml": listed})).intake("contact") is not None


def test_fields_must_be_plain_values_of_the_form(tmp_path: Path) -> None:
    found = problems(
        tmp_path,
        {
            "intakes/contact.yaml": GOOD.replace(
                "[company, email, phone]", "[company, emial, account, company]"
            )
        },
    )
    assert found == [
        "intakes/contact.yaml:3:19: unknown field 'emial' of lead (did you mean 'email'?)",
        "intakes/contact.yaml:3:26: an intake takes typed values only; 'account' is a link field",
        "intakes/contact.yaml:3:35: field 'company' is listed twice",
    ]


def test_values_and_names_are_checked(tmp_path: Path) -> None:
    bad = """\
intake: contact
form: lead
fields: [company, email]
hidden: [phone]
defaults: {source: website, score: 3}
as_role: marketing
honeypot: notes
rate: 10/fortnight
allowed_origins: ["https://ok.example.com", "https://bad.example.com/path"]
"""
    assert problems(tmp_path, {"intakes/contact.yaml": bad}) == [
        "intakes/contact.yaml:4:10: hidden field 'phone' is not one of the intake's fields",
        "intakes/contact.yaml:5:20: defaults value of 'source': 'website' is not an option;"
        " choose from ['web', 'fair', 'sem']",
        "intakes/contact.yaml:7:11: the honeypot 'notes' is a field of lead;"
        " name an input the form does not have",
        "intakes/contact.yaml:8:7: invalid rate '10/fortnight':"
        " write a count per period, such as 10/minute",
        "intakes/contact.yaml:9:45: invalid origin 'https://bad.example.com/path':"
        " write scheme and host only, such as https://www.example.com",
    ]


def test_who_the_intake_runs_as(tmp_path: Path) -> None:
    found = problems(tmp_path, {"intakes/contact.yaml": GOOD.replace("as_role: marketing", "as_role: admin")})
    assert found == [
        "intakes/contact.yaml:5:10: an intake never runs as admin; name a role with the rights it needs"
    ]
    found = problems(
        tmp_path / "2", {"intakes/contact.yaml": GOOD.replace("as_role: marketing", "as_role: marketng")}
    )
    assert found == [
        "intakes/contact.yaml:5:10: unknown role 'marketng' (did you mean 'marketing'?);"
        " declare it in app.yaml"
    ]
    found = problems(tmp_path / "3", {"intakes/contact.yaml": GOOD.replace("as_role: marketing\n", "")})
    assert found == [
        "intakes/contact.yaml:2:7: role 'public' may not create lead records;"
        " grant it create, or name another"
    ]
    both = GOOD + "as_user: web.intake\n"
    assert problems(tmp_path / "4", {"intakes/contact.yaml": both}) == [
        "intakes/contact.yaml:1:1: give as_role or as_user, not both"
    ]


def test_duplicates_need_groups_to_merge_and_flags_go_with_keep(tmp_path: Path) -> None:
    flagged = GOOD + "on_duplicate: drop\nflag: {possible_duplicate: true}\n"
    assert problems(tmp_path, {"intakes/contact.yaml": flagged}) == [
        "intakes/contact.yaml:7:7: flag marks a kept duplicate: it needs on_duplicate: keep"
    ]
    merging = GOOD.replace("form: lead", "form: account").replace("[company, email, phone]", "[name]")
    merging = merging.replace("defaults: {source: web}\n", "") + "on_duplicate: merge\n"
    assert problems(tmp_path / "2", {"intakes/contact.yaml": merging}) == [
        "intakes/contact.yaml:4:10: role 'marketing' may not create account records;"
        " grant it create, or name another",
        "intakes/contact.yaml:5:15: account has no duplicate groups to merge by",
    ]


def test_intake_keys_are_unique(tmp_path: Path) -> None:
    found = problems(tmp_path, {"intakes/a.yaml": GOOD, "intakes/b.yaml": GOOD})
    assert found == ["intakes/b.yaml:1:9: intake 'contact' is defined twice"]


def test_webhooks_take_a_url_or_a_variable_and_known_fields(tmp_path: Path) -> None:
    hook = """\
automation: hook
form: lead
trigger: created
effects:
  - webhook: {url_env: LEAD_HOOK_URL, secret_env: LEAD_HOOK_SECRET, fields: [company, emial, created_at]}
"""
    found = problems(tmp_path, {"automations/hook.yaml": hook})
    assert found == ["automations/hook.yaml:5:87: unknown field 'emial' (did you mean 'email'?)"]
    both = hook.replace("url_env: LEAD_HOOK_URL", "url: https://x.example.com/h, url_env: LEAD_HOOK_URL")
    assert problems(tmp_path / "2", {"automations/hook.yaml": both})[0].endswith(
        "a webhook needs exactly one of url and url_env"
    )
    lower = hook.replace("LEAD_HOOK_URL", "lead_hook_url").replace("emial", "email")
    assert "automations/hook.yaml:5:24:" in problems(tmp_path / "3", {"automations/hook.yaml": lower})[0]

# ruff: noqa: F811 (the fixtures imported from test_web_teams are redefined as arguments)
"""Attacks on teams in the browser: what a teammate's re-run, the keys page in a team's workspace,
a deleted account, a removed admin's invite links, an admin acting on someone else's key or an
owner's budget, and hostile values on the team page's forms must never do."""

import logging
import re
from decimal import Decimal

import pytest
from django.contrib.auth import get_user_model
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.db.models import ProtectedError
from django.test import Client
from django.urls import reverse

from playground.generations.inputs import input_url, parse_reference
from playground.generations.models import InputFile, Task
from playground.keys.credentials import store_upstream_key, upstream_key_for
from playground.keys.models import ApiKey, AuditEntry, UpstreamCredential
from playground.teams.models import Invite, Membership, Role, Team
from playground.teams.services import remove_member

from .helpers import SEED, solid_png
from .html_forms import BrowserForm
from .test_web_teams import (  # noqa: F401 (fixtures)
    PASSWORD,
    browser,
    generate,
    make_invite,
    people,
    platform,
    studio,
)

TEAM_SECRET = "mv_the_teams_own_secret_WXYZ"


# --- Re-running a teammate's task that used an uploaded file ---------------------------------------------


def upload(client, capture, content: bytes) -> Task:
    page = client.get(reverse("play", args=[SEED]))
    form = BrowserForm(page.content.decode(), "run-form")
    form.type("prompt", "a fox")
    form.attach("image_urls__file", SimpleUploadedFile("photo.png", content, "image/png"))
    with capture(execute=True):
        response = client.post(reverse("play", args=[SEED]), form.submission())
    assert response.status_code == 302, response.content.decode()[-2000:]
    return Task.objects.get(pk=response.url.rsplit("/", 1)[-1])


def test_a_member_re_runs_a_teammates_task_that_used_an_uploaded_file(
    studio, people, django_capture_on_commit_callbacks
):
    bob = browser(people["bob"], studio)
    task = upload(bob, django_capture_on_commit_callbacks, solid_png())
    alice = browser(people["alice"], studio)
    page = alice.get(reverse("play", args=[SEED]) + f"?from={task.pk}")
    form = BrowserForm(page.content.decode(), "run-form")
    with django_capture_on_commit_callbacks(execute=True):
        response = alice.post(reverse("play", args=[SEED]), form.submission())
    assert response.status_code == 302, re.findall(r'class="error"[^>]*>([^<]*)', response.content.decode())
    rerun = Task.objects.get(pk=response.url.rsplit("/", 1)[-1])
    assert rerun.owner == people["alice"] and rerun.team_id == studio.pk
    # alice ran it with a file of her own (a copy), which her own pages can show her.
    reference = parse_reference(rerun.input["image_urls"][0])
    assert InputFile.objects.get(pk=reference.id).owner == people["alice"]


def test_a_teammates_re_run_form_never_opens_an_input_file_outside_the_team(
    studio, people, django_capture_on_commit_callbacks
):
    """The re-run form signs only the files of the task it came from, and only for someone who
    sees that task: dave (another team) gets a 404, and bob's personal file is signed nowhere."""
    bob_personal = browser(people["bob"])
    personal = upload(bob_personal, django_capture_on_commit_callbacks, solid_png((1, 2, 3)))
    personal_file = parse_reference(personal.input["image_urls"][0])
    team_task = upload(browser(people["bob"], studio), django_capture_on_commit_callbacks, solid_png())
    alice = browser(people["alice"], studio)
    html = alice.get(reverse("play", args=[SEED]) + f"?from={team_task.pk}").content.decode()
    assert personal_file.id not in html
    assert alice.get(reverse("play", args=[SEED]) + f"?from={personal.pk}").status_code == 404
    dave = browser(people["dave"])
    assert dave.get(reverse("play", args=[SEED]) + f"?from={team_task.pk}").status_code == 404
    assert alice.get(input_url("", personal_file.id, personal_file.name)).status_code == 404


# --- The keys page in a team's workspace and the team's MindVideo key --------------------------------------


def test_the_keys_page_never_shows_or_tests_the_teams_key_as_ones_own(studio, people):
    store_upstream_key(people["carol"], TEAM_SECRET, "company", team_id=studio.pk)
    carol = browser(people["carol"])  # her personal workspace, where the page has her own key
    page = carol.get(reverse("keys")).content.decode()
    own = page.split('id="upstream-key"')[1].split("</section>")[0]
    assert TEAM_SECRET[-4:] not in own and "company" not in own, "the team's key shown as carol's own"
    # "Test connection" of her own key (she has none), from either workspace, leaves the team's alone.
    for carol in (browser(people["carol"]), browser(people["carol"], studio)):
        assert carol.post(reverse("upstream-test")).status_code == 404
    team_key = UpstreamCredential.objects.get(team=studio)
    assert team_key.failing_since is None and team_key.last_error == ""


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"secret": "", "label": "company"}, "This field is required."),
        ({"secret": "x" * 501}, "Ensure this value has at most 500 characters"),
        ({"secret": "mv_ok_key", "label": "l" * 101}, "Ensure this value has at most 100 characters"),
        ({"secret": "{key}\x01pasted-too"}, "paste only the key"),
        ({"secret": "{key}\nsecond line"}, "paste only the key"),
        ({"secret": "{key} label"}, "paste only the key"),
    ],
)
def test_the_upstream_key_forms_say_what_is_wrong_with_a_bad_value_and_never_log_the_key(
    studio, people, platform, caplog, data, message
):
    """The team's form and one's own: the error is shown beside the field, the platform is not
    asked (a key with a control character inside made httpx log the whole header), and nothing
    is stored."""
    data = {name: value.replace("{key}", platform.key) for name, value in data.items()}
    carol = browser(people["carol"], studio)
    with caplog.at_level(logging.DEBUG):
        team = carol.post(reverse("team-upstream-save"), data)
        own = browser(people["carol"]).post(reverse("upstream-save"), data)
    assert team.status_code == 422
    for response in (team, own):
        section = response.content.decode().split('id="upstream-key"')[1].split("</section>")[0]
        assert message in section and 'class="error"' in section, section
        assert "Could not reach" not in section
    assert platform.key not in caplog.text
    assert not platform.requests  # a bad value is refused before the platform is asked
    assert not UpstreamCredential.objects.exists()


# --- Deleting an account ----------------------------------------------------------------------------------


def test_deleting_a_members_account_keeps_the_team_tasks_they_ran_and_what_they_spent(studio, people):
    """An account that ran a team's tasks is deactivated, not deleted: deleting it is refused, even
    once it has left the team, and the team's record (its tasks and their spend) stays whole."""
    bob = browser(people["bob"], studio)
    task = generate(bob, "bob's team fox")
    spent = Task.objects.get(pk=task.pk).cost_actual or Task.objects.get(pk=task.pk).cost_estimate
    assert spent > 0
    with pytest.raises(ProtectedError):
        people["bob"].delete()  # in the team
    remove_member(studio, people["bob"])
    with pytest.raises(ProtectedError):
        people["bob"].delete()  # left it, but ran its tasks
    assert Task.objects.filter(pk=task.pk, team=studio).exists(), "the team's task went with bob's account"
    alice = browser(people["alice"], studio)
    assert "bob&#x27;s team fox" in alice.get(reverse("history")).content.decode()
    # Without any team rows an account still goes, with its own things.
    dave = get_user_model().objects.create_user("dave-alone", password="x-long-pass-1")
    generate(browser(dave), "dave's own")
    dave.delete()
    assert not Task.objects.filter(input__prompt="dave's own").exists()


def test_deleting_the_admin_who_stored_the_teams_key_keeps_the_teams_key(studio, people):
    store_upstream_key(people["carol"], TEAM_SECRET, team_id=studio.pk)
    remove_member(studio, people["carol"])
    with pytest.raises(ProtectedError):
        people["carol"].delete()
    assert upstream_key_for(people["bob"].pk, studio.pk) == TEAM_SECRET


def test_deleting_an_account_keeps_the_teams_audit_log(studio, people):
    alice = browser(people["alice"], studio)
    make_invite(alice)
    before = AuditEntry.objects.filter(team=studio).count()
    Membership.objects.filter(team=studio, user=people["carol"]).update(role=Role.OWNER)
    remove_member(studio, people["alice"])  # alice hands the team on and leaves it
    with pytest.raises(ProtectedError):
        people["alice"].delete()  # the team's log is filed under her
    assert AuditEntry.objects.filter(team=studio).count() >= before


def test_a_team_whose_last_owners_account_was_deleted_still_answers_its_pages_without_a_500(studio, people):
    Membership.objects.filter(team=studio, user=people["carol"]).update(role=Role.MEMBER)
    with pytest.raises(ProtectedError):
        people["alice"].delete()  # the only owner, deleted by an operator: refused
    carol = browser(people["carol"], studio)
    page = carol.get(reverse("team"))
    assert page.status_code == 200
    # What a member can still do (leave) answers, and nothing is a server error.
    left = carol.post(reverse("team-member-remove", args=[people["carol"].pk]))
    assert left.status_code in (302, 409)


# --- Invites ----------------------------------------------------------------------------------------------


def test_removing_an_admin_withdraws_the_invite_links_they_made(studio, people):
    carol = browser(people["carol"], studio)
    link = make_invite(carol, role="admin")
    remove_member(studio, people["carol"])
    # carol kept the link: she must not be able to walk back in as an admin with it.
    answer = browser(people["carol"]).post(link)
    assert answer.status_code == 410
    assert not Membership.objects.filter(team=studio, user=people["carol"]).exists()


def test_demoting_an_admin_to_member_withdraws_the_admin_invites_they_made(studio, people):
    carol = browser(people["carol"], studio)
    link = make_invite(carol, role="admin")
    alice = browser(people["alice"], studio)
    assert (
        alice.post(reverse("team-member-role", args=[people["carol"].pk]), {"role": "member"}).status_code
        == 302
    )
    assert browser(people["dave"]).post(link).status_code == 410
    assert not Membership.objects.filter(team=studio, user=people["dave"]).exists()


# --- An admin acting on someone else --------------------------------------------------------------------


def test_an_admin_never_gets_a_secret_that_acts_as_another_member(studio, people):
    alice = browser(people["alice"], studio)
    alice.post(reverse("key-create"), {"name": "alices-ci"})
    key = ApiKey.objects.get(name="alices-ci")
    carol = browser(people["carol"], studio)
    answer = carol.post(reverse("key-action", args=[key.pk, "roll"]), {"grace": "0"})
    assert not re.search(r"pg_live_[A-Za-z0-9]{20,}", answer.content.decode()), (
        "carol (admin) got a new secret for alice's (owner) key: tasks made with it are 'run by alice'"
    )
    before = key.secret_hash
    key.refresh_from_db()
    assert key.secret_hash == before
    # She may still stop it: disable and delete stay managers' to do.
    assert carol.post(reverse("key-action", args=[key.pk, "disable"])).status_code == 302


def test_an_admin_cannot_set_an_owners_budget(studio, people):
    carol = browser(people["carol"], studio)
    answer = carol.post(reverse("team-member-budget", args=[people["alice"].pk]), {"budget": "0"})
    assert answer.status_code == 403
    assert "Only an owner" in answer.content.decode()
    assert Membership.objects.get(team=studio, user=people["alice"]).budget is None
    # An owner may, and an admin may set a member's.
    alice = browser(people["alice"], studio)
    assert (
        alice.post(reverse("team-member-budget", args=[people["carol"].pk]), {"budget": "5"}).status_code
        == 302
    )
    assert (
        carol.post(reverse("team-member-budget", args=[people["bob"].pk]), {"budget": "0"}).status_code == 302
    )


# --- Hostile values on the team page ------------------------------------------------------------------------

HUGE = "9" * 30


@pytest.mark.parametrize(
    "path",
    [
        f"/team/members/{HUGE}/role",
        f"/team/members/{HUGE}/remove",
        f"/team/members/{HUGE}/budget",
        f"/team/invites/{HUGE}/revoke",
        f"/keys/{HUGE}/disable",
        f"/keys/passes/{HUGE}/revoke",
    ],
)
def test_a_huge_id_in_a_team_or_keys_url_is_a_404_not_a_500(studio, people, path):
    alice = browser(people["alice"], studio)
    assert alice.post(path, {"role": "member", "budget": "1"}).status_code == 404


@pytest.mark.parametrize("slug", ["a_b", "-x", "_", "_design"])
def test_a_team_made_in_the_browser_has_a_slug_the_commands_accept(people, slug):
    answer = browser(people["bob"]).post(reverse("team-create"), {"name": "Studio", "slug": slug})
    assert answer.status_code == 422 and "Start with a letter or digit" in answer.content.decode()
    assert not Team.objects.exists()


def test_every_slug_the_browser_accepts_is_one_the_model_accepts(people):
    bob = browser(people["bob"])
    assert bob.post(reverse("team-create"), {"name": "Ünïcode ✓ name", "slug": "Design-2"}).status_code == 302
    team = Team.objects.get()
    team.full_clean()
    out = call_command("add_member", team.slug, "carol")  # the command line manages it too
    assert out is None and Membership.objects.filter(team=team, user=people["carol"]).exists()


@pytest.mark.parametrize(
    ("url", "data", "field"),
    [
        ("team-budget", {"budget": HUGE}, "Enter at most $1,000,000."),
        ("team-budget", {"budget": "-1"}, "Enter at least $0."),
        ("team-budget", {"budget": "NaN"}, "Enter an amount in dollars"),
        ("team-budget", {"budget": "1e400"}, "Enter at most $1,000,000."),
        ("team-budget", {"budget": "", "budget_period": "month"}, "Set a budget for it to reset"),
        ("team-budget", {"budget": "5", "budget_period": "fortnight"}, "Select a valid choice"),
        ("team-invite-create", {"role": "owner", "hours": "5"}, "Select a valid choice"),
        ("team-invite-create", {"role": "member", "hours": HUGE}, "Ensure this value is less than"),
        ("team-invite-create", {"role": "member", "hours": HUGE * 200}, "Enter a whole number"),
        ("team-invite-create", {"role": "member", "hours": "0"}, "Ensure this value is greater than"),
        ("team-invite-create", {"role": "member", "hours": "x"}, "Enter a whole number"),
        ("team-invite-create", {}, "This field is required"),
        ("team-member-add", {"username": "nobody", "role": "member"}, "No account is named"),
        ("team-member-add", {"username": "dave", "role": "owner"}, "Select a valid choice"),
        ("team-member-add", {"username": "x" * 5000, "role": "member"}, "Ensure this value has at most"),
        ("team-member-add", {"username": "bob", "role": "member"}, "in the team already"),
    ],
)
def test_the_team_pages_forms_answer_hostile_values_with_the_fields_error(studio, people, url, data, field):
    alice = browser(people["alice"], studio)
    answer = alice.post(reverse(url), data)
    assert answer.status_code == 422, answer.status_code
    assert field in answer.content.decode()


@pytest.mark.parametrize(
    ("action", "data", "message"),
    [
        ("team-member-role", {"role": "emperor"}, "Choose owner, admin or member."),
        ("team-member-role", {}, "Choose owner, admin or member."),
        ("team-member-budget", {"budget": HUGE}, "Enter at most $1,000,000."),
        ("team-member-budget", {"budget": "-0.01"}, "Enter at least $0."),
        ("team-member-budget", {"budget": "abc"}, "Enter an amount in dollars"),
    ],
)
def test_a_members_forms_answer_hostile_values_beside_the_member(studio, people, action, data, message):
    alice = browser(people["alice"], studio)
    answer = alice.post(reverse(action, args=[people["bob"].pk]), data)
    assert answer.status_code == 422
    row = answer.content.decode().split(f'id="member-{people["bob"].pk}"')[1].split("</tr>")[0]
    assert message in row


def test_a_member_with_a_budget_of_zero_is_refused_in_the_browser_by_name(studio, people):
    Membership.objects.filter(team=studio, user=people["bob"]).update(budget=Decimal(0))
    bob = browser(people["bob"], studio)
    answer = bob.post(
        reverse("play", args=[SEED]), {"prompt": "a fox", "size": "1:1", "resolution": "1K", "n": 1}
    )
    assert answer.status_code == 422
    assert "your budget in the team" in answer.content.decode()
    assert not Task.objects.exists()
    # Their personal workspace is not the team's: the team's budget for them stops nothing there.
    assert generate(browser(people["bob"])).team_id is None


def test_nobody_outside_the_team_reads_its_audit_log_or_usage(studio, people):
    generate(browser(people["bob"], studio), "secret team prompt")
    for client in (browser(people["dave"]), browser(people["bob"]), Client()):
        csv = client.get(reverse("team-audit-csv"))
        assert csv.status_code in (302, 403, 404) or b"member.added" not in csv.content
        usage = client.get(reverse("usage-csv"))
        assert b"studio" not in usage.content and b"member,bob" not in usage.content
    assert browser(people["bob"], studio).get(reverse("team-audit-csv")).status_code == 403
    assert get_user_model().objects.count() == 4
    assert Invite.objects.count() == 0


# --- Invites raced (SQLite here; PostgreSQL with DATABASE_URL) ----------------------------------------------

RACE_ROUNDS = 6


@pytest.mark.django_db(transaction=True)
def test_one_invite_opened_by_several_people_at_once_makes_one_member(studio, people, settings):
    from playground.teams.services import create_invite

    from .helpers import at_once

    settings.PLAYGROUND_SIGNUP_RATE_LIMIT = "1000/3600"  # every round signs up from one address
    make = get_user_model().objects.create_user
    for round_ in range(RACE_ROUNDS):
        link = reverse("invite", args=[create_invite(studio, Role.ADMIN, 1).token])
        members = Membership.objects.filter(team=studio).count()
        visitors = iter(
            [*(browser(make(f"r{round_}-{n}", password=PASSWORD)) for n in range(2)), Client(), Client()]
        )
        names, statuses = iter(range(4)), []

        def accept(link=link, visitors=visitors, names=names, statuses=statuses, round_=round_):
            client, name = next(visitors), next(names)
            data = {"username": f"new-{round_}-{name}", "password1": PASSWORD, "password2": PASSWORD}
            statuses.append(client.post(link, data).status_code)

        at_once(accept, 4)
        assert sorted(statuses) == [302, 410, 410, 410], (round_, statuses)
        assert Membership.objects.filter(team=studio).count() == members + 1, round_
        # No account was made for a sign-up that lost the race.
        assert get_user_model().objects.filter(username__startswith=f"new-{round_}-").count() <= 1


# --- A form shown in one workspace, submitted after switching in another tab --------------------------------


def test_a_form_shown_in_one_workspace_never_submits_into_another(studio, people):
    bob = browser(people["bob"])  # personal
    form = BrowserForm(bob.get(reverse("play", args=[SEED])).content.decode(), "run-form")
    form.type("prompt", "my private idea")
    bob.post(reverse("workspace"), {"team": "studio"})  # another tab switches to the team
    answer = bob.post(reverse("play", args=[SEED]), form.submission())
    assert not Task.objects.filter(team=studio).exists(), "a personal form's prompt went to the team"
    assert answer.status_code == 409 and "switched" in answer.content.decode()
    # The form as the page shows it now (in the team) submits into the team.
    form = BrowserForm(bob.get(reverse("play", args=[SEED])).content.decode(), "run-form")
    form.type("prompt", "a team idea")
    assert bob.post(reverse("play", args=[SEED]), form.submission()).status_code == 302
    assert Task.objects.get().team_id == studio.pk


def hidden_fields(page: str, action: str) -> dict:
    """The hidden inputs of the page's form posting to `action`, as the browser sends them."""
    form = re.search(rf'<form[^>]*action="{re.escape(action)}(?:#[a-z-]+)?"[^>]*>(.*?)</form>', page, re.S)
    assert form, action
    return dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', form.group(1)))


def test_a_team_page_left_open_never_changes_another_team_after_a_switch(studio, people):
    from playground.teams.services import add_member, create_team

    agency = create_team("agency", people["alice"], "Agency")
    add_member(agency, people["carol"], Role.ADMIN)
    for team in (studio, agency):
        store_upstream_key(people["alice"], TEAM_SECRET, team_id=team.pk)
    alice = browser(people["alice"], studio)
    page = alice.get(reverse("team")).content.decode()  # Studio's page, left open
    alice.post(reverse("workspace"), {"team": "agency"})  # another tab
    for action, data in (
        (reverse("team-member-remove", args=[people["carol"].pk]), {}),
        (reverse("team-member-role", args=[people["carol"].pk]), {"role": "member"}),
        (reverse("team-budget"), {"budget": "1"}),
        (reverse("team-upstream-delete"), {}),
    ):
        answer = alice.post(action, {**hidden_fields(page, action), **data})
        assert answer.status_code == 409 and "switched" in answer.content.decode(), action
    assert Membership.objects.get(team=agency, user=people["carol"]).role == Role.ADMIN
    agency.refresh_from_db()
    assert agency.budget is None and UpstreamCredential.objects.filter(team=agency).exists()


@pytest.mark.django_db(transaction=True)
def test_browser_submits_at_once_in_a_team_never_go_over_its_budget_or_a_members(studio, people, queue_only):
    from .helpers import at_once, seed_input

    one = generate(browser(people["alice"], studio)).cost_estimate
    Task.objects.all().delete()
    studio.budget = one * 3  # three tasks for the team; bob alone may make one
    studio.save()
    Membership.objects.filter(team=studio, user=people["bob"]).update(budget=one)
    clients = iter([browser(people[name], studio) for name in ("alice", "bob", "carol") for _ in range(3)])
    prompts = iter(range(9))

    def press(clients=clients, prompts=prompts):
        client, prompt = next(clients), next(prompts)
        client.post(reverse("play", args=[SEED]), {**seed_input(prompt=f"race {prompt}"), "form_token": ""})

    at_once(press, 9)
    assert Task.objects.filter(team=studio).count() == 3
    assert Task.objects.filter(team=studio, owner=people["bob"]).count() <= 1

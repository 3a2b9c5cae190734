"""``attention-hub-check``: are these hub users in the course's JupyterHub group?

With nbgrader's ``JupyterHubAuthPlugin`` a learner sees and fetches a course only if they are in
the hub group ``nbgrader-<course_id>``. A learner who is not gets nbgrader's bare "You do not
have access to this course." (or an empty Assignments tab). This check says, one line per user,
which user is missing from which group and how to add them. It asks the hub's REST API
(``JUPYTERHUB_API_URL``, as every single-user server and hub terminal has it) with the token in
``JUPYTERHUB_API_TOKEN`` (scope ``read:users:groups`` on those users, e.g. an admin's token).

Exit status 0 when every user is in the group, 1 when one is not (or does not exist), 2 when the
hub cannot be asked.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass

COURSE_ID = "attention-from-scratch"  # as autograder/nbgrader_config.py


@dataclass(frozen=True)
class Membership:
    """One hub user and whether they are in the course's learner group."""

    user: str
    group: str
    exists: bool
    member: bool

    def problem(self) -> str | None:
        """The one-line error for this user, or ``None`` when they can take the course."""
        if not self.exists:
            return (
                f"hub user {self.user!r} does not exist: add them on the hub "
                f"(allowed_users or Admin page), then to the group {self.group!r}"
            )
        if not self.member:
            return (
                f"hub user {self.user!r} is not in the JupyterHub group {self.group!r}, so "
                f"nbgrader will not let them fetch or submit: add them with "
                f"`nbgrader db student add {self.user}` or the hub's Admin page"
            )
        return None


class HubUnreachableError(RuntimeError):
    """The hub's API did not answer, or refused the token."""


def membership(api_url: str, token: str, user: str, course_id: str = COURSE_ID) -> Membership:
    """Ask the hub whether ``user`` is in ``nbgrader-<course_id>``."""
    group = f"nbgrader-{course_id}"
    url = f"{api_url.rstrip('/')}/users/{urllib.parse.quote(user)}"
    request = urllib.request.Request(url, headers={"Authorization": f"token {token}"})
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            model = json.load(answer)
    except urllib.error.HTTPError as error:
        if error.code == 404:
            return Membership(user, group, exists=False, member=False)
        raise HubUnreachableError(
            f"the hub refused GET {url} ({error.code}): the token in JUPYTERHUB_API_TOKEN "
            "needs the scope read:users:groups"
        ) from error
    except OSError as error:
        raise HubUnreachableError(f"no answer from the hub at {api_url}: {error}") from error
    return Membership(user, group, exists=True, member=group in model.get("groups", []))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="attention-hub-check",
        description="Check that hub users are in the course's nbgrader group.",
    )
    parser.add_argument("users", nargs="+", help="hub user names (the learners)")
    parser.add_argument("--course-id", default=COURSE_ID)
    parser.add_argument(
        "--hub-api",
        default=os.environ.get("JUPYTERHUB_API_URL", ""),
        help="the hub's API URL (default: $JUPYTERHUB_API_URL)",
    )
    args = parser.parse_args(argv)
    token = os.environ.get("JUPYTERHUB_API_TOKEN", "")
    if not args.hub_api or not token:
        print(
            "attention-hub-check: set JUPYTERHUB_API_URL (or --hub-api) and "
            "JUPYTERHUB_API_TOKEN (a hub terminal has both)",
            file=sys.stderr,
        )
        return 2
    try:
        found = [membership(args.hub_api, token, u, args.course_id) for u in args.users]
    except HubUnreachableError as error:
        print(f"attention-hub-check: {error}", file=sys.stderr)
        return 2
    problems = [p for p in (m.problem() for m in found) if p]
    for line in problems:
        print(f"attention-hub-check: {line}", file=sys.stderr)
    if not problems:
        print(f"{len(found)} hub users in nbgrader-{args.course_id}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())

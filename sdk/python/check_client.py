#!/usr/bin/env python3
"""Drives a live station-api through the generated Python client, and nothing else.

Covers what an SDK user does: basic auth; create the textbook's reading; list every page by
following `next`; filter and order the list (django-filter's lookups); walk it by cursor, both
ways; retrieve; replace (PUT); change (PATCH); delete; and one of each error body (400 field
errors, 400 query parameter errors, 401, 404) decoded into the client's typed models. Exits
non-zero on the first failed check. Generate the client first with `sdk/generate.sh`.

Usage:
    STATION_URL=http://127.0.0.1:8000 STATION_USERNAME=admin STATION_PASSWORD=... \\
        .venv/sdk/bin/python sdk/python/check_client.py
"""

from __future__ import annotations

import base64
import json
import math
import os
import secrets
import sys
from http import HTTPStatus
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import parse_qs, urlsplit

import httpx

# The generated package lives next to this file and is not installed.
sys.path.insert(0, str(Path(__file__).resolve().parent / "generated"))

from station_api_client import AuthenticatedClient, Client  # noqa: E402
from station_api_client.api.station import (  # noqa: E402
    api_root,
    create_station,
    destroy_station,
    list_stations,
    partial_update_station,
    retrieve_station,
    update_station,
)
from station_api_client.api.tokens import create_token, destroy_token  # noqa: E402
from station_api_client.models import (  # noqa: E402
    ApiRoot,
    ErrorDetail,
    IssuedToken,
    ScopeName,
    TokenInput,
    PaginatedStationList,
    QueryParameterErrors,
    Station,
    StationInput,
    StationPatchInput,
    ValidationErrors,
)
from station_api_client.types import UNSET, Response, Unset  # noqa: E402

T = TypeVar("T")

# The textbook's reading (its curl session sends these as strings; the SDK sends typed JSON).
TEXTBOOK = StationInput(
    name="CityName", timestamp=1393926310, temperature=28, lat=30.733315, lon=76.779418
)
PAGE_SIZE = 10
EXTRA_READINGS = 2 * PAGE_SIZE  # with the textbook's, at least three pages
# The extra readings' names carry this run's tag, so the filters below select exactly them even
# on a server that holds other readings (or leftovers of an interrupted run).
RUN_TAG = f"sdk-python-{secrets.token_hex(4)}"
FIRST_TIMESTAMP = 1393926310  # reading n has FIRST_TIMESTAMP + n and temperature 20 + n / 10
CURSOR_PAGE_SIZE = 6  # 20 readings: pages of 6, 6, 6 and 2


class CheckFailed(Exception):
    """A check against the live server did not hold."""


def check(condition: bool, message: str) -> None:
    if not condition:
        raise CheckFailed(message)


def expect(response: Response[Any], status: HTTPStatus, model: type[T]) -> T:
    """The parsed body of `response`, which must have `status` and decode into `model`."""
    check(
        response.status_code == status,
        f"expected {status.value}, got {response.status_code}: {response.content!r}",
    )
    check(
        isinstance(response.parsed, model),
        f"a {status.value} body should decode into {model.__name__}, got {response.parsed!r}",
    )
    return response.parsed  # type: ignore[return-value]


def basic_token(username: str, password: str) -> str:
    return base64.b64encode(f"{username}:{password}".encode()).decode("ascii")


def bodies_are_json(request: httpx.Request) -> None:
    """Every body the client sends must be JSON: the typed input models are JSON's."""
    if request.method in ("POST", "PUT", "PATCH"):
        content_type = request.headers.get("content-type", "")
        check(
            content_type == "application/json",
            f"{request.method} {request.url.path} sent {content_type!r}, not JSON",
        )
        json.loads(request.content)


def same_reading(station: Station, expected: StationInput) -> bool:
    return (
        station.name == expected.name
        and station.timestamp == expected.timestamp
        and station.temperature == expected.temperature
        and station.lat == expected.lat
        and station.lon == expected.lon
    )


def link_query(link: str) -> dict[str, list[str]]:
    """The query parameters of a `next`/`previous` link, which must point at the list."""
    parts = urlsplit(link)
    check(parts.path == "/station/", f"a page link should point at /station/: {link}")
    return parse_qs(parts.query, keep_blank_values=True)


def page_of(link: str) -> str:
    """The `page` query parameter of a `next`/`previous` link, for `list_stations(page=...)`."""
    return link_query(link).get("page", [""])[0]


def cursor_of(link: str) -> str:
    """The `cursor` token of a `next`/`previous` link, for `list_stations(cursor=...)`."""
    tokens = link_query(link).get("cursor", [])
    check(len(tokens) == 1 and tokens[0] != "", f"a cursor link without one token: {link}")
    return tokens[0]


def counted(page: PaginatedStationList) -> int:
    """`count`, which a page by number must have (only cursor pages leave it out)."""
    if not isinstance(page.count, int):
        raise CheckFailed(f"a page by number without a count: {page.count!r}")
    return page.count


def walk_all_pages(client: AuthenticatedClient) -> tuple[list[Station], int, int]:
    """Every reading, following `next` from the first page; with the count and the page count."""
    first = expect(list_stations.sync_detailed(client=client), HTTPStatus.OK, PaginatedStationList)
    check(first.previous is None, f"page 1 has a previous link: {first.previous}")
    count = counted(first)
    readings: list[Station] = []
    page, pages = first, 1
    while True:
        check(counted(page) == count, "the count changed while paging")
        check(len(page.results) <= PAGE_SIZE, f"a page holds {len(page.results)} readings")
        readings.extend(page.results)
        if page.next_ is None:
            break
        check(pages <= count // PAGE_SIZE + 1, "`next` does not stop")
        number = page_of(page.next_)
        page = expect(
            list_stations.sync_detailed(client=client, page=number),
            HTTPStatus.OK,
            PaginatedStationList,
        )
        pages += 1
        check(page.previous is not None, f"page {number} has no previous link")
    return readings, count, pages


def main() -> None:
    base_url = os.environ.get("STATION_URL", "http://127.0.0.1:8000")
    username = os.environ.get("STATION_USERNAME", "admin")
    password = os.environ["STATION_PASSWORD"]

    # openapi-python-client has no basic-auth helper: a token with the `Basic` prefix is one.
    admin = AuthenticatedClient(
        base_url=base_url,
        token=basic_token(username, password),
        prefix="Basic",
        raise_on_unexpected_status=True,
        httpx_args={"event_hooks": {"request": [bodies_are_json]}},
    )
    anonymous = Client(base_url=base_url, raise_on_unexpected_status=True)
    impostor = AuthenticatedClient(
        base_url=base_url,
        token=basic_token(username, password + "-wrong"),
        prefix="Basic",
        raise_on_unexpected_status=True,
    )

    with admin:
        root = expect(api_root.sync_detailed(client=admin), HTTPStatus.OK, ApiRoot)
        check(root.station == f"{base_url}/station/", f"API root: {root.station}")
        print("ok  basic auth: the API root answers")

        # Create
        created = create_station.sync_detailed(client=admin, body=TEXTBOOK)
        reading = expect(created, HTTPStatus.CREATED, Station)
        check(same_reading(reading, TEXTBOOK), f"created {reading}")
        check(reading.url == f"{base_url}/station/{reading.id}/", f"url {reading.url}")
        check(created.headers.get("location") == reading.url, "Location is not the new url")
        print(f"ok  create: the textbook's reading is {reading.url}")

        # List, following `next` to the end
        extras: list[Station] = []
        for n in range(EXTRA_READINGS):
            body = StationInput(
                name=f"{RUN_TAG}-{n}", timestamp=FIRST_TIMESTAMP + n, temperature=20 + n / 10,
                lat=-45.5, lon=170.25,
            )
            extras.append(expect(
                create_station.sync_detailed(client=admin, body=body), HTTPStatus.CREATED, Station
            ))
        extra_ids = [extra.id for extra in extras]
        readings, count, pages = walk_all_pages(admin)
        ids = [r.id for r in readings]
        check(len(ids) == count, f"walked {len(ids)} readings, count says {count}")
        check(ids == sorted(set(ids)), "pages are not in id order, or overlap")
        check({reading.id, *extra_ids} <= set(ids), "a created reading is missing from the pages")
        check(pages == math.ceil(count / PAGE_SIZE), f"{pages} pages for {count} readings")
        check(pages >= 3, f"only {pages} pages: pagination was not exercised")
        last = expect(
            list_stations.sync_detailed(client=admin, page="last"),
            HTTPStatus.OK,
            PaginatedStationList,
        )
        check(last.next_ is None and last.results[-1].id == ids[-1], "page=last is not the end")
        print(f"ok  list: followed `next` through {pages} pages, {count} readings")

        # Filters and ordering, through the generated keyword arguments (`name__icontains` is
        # `name_icontains` there). This run's readings 5..12: the tag (in upper case, which
        # icontains ignores), timestamps in [first + 5, first + 15), temperatures up to 21.25;
        # newest first, three a page. The results are compared with the created readings whole.
        def window(page: str | Unset = UNSET) -> PaginatedStationList:
            return expect(
                list_stations.sync_detailed(
                    client=admin,
                    page=page,
                    name_icontains=RUN_TAG.upper(),
                    timestamp_gte=FIRST_TIMESTAMP + 5,
                    timestamp_lt=FIRST_TIMESTAMP + 15,
                    temperature_lte=21.25,
                    ordering="-timestamp",
                    page_size=3,
                ),
                HTTPStatus.OK,
                PaginatedStationList,
            )

        expected = [extras[n] for n in range(12, 4, -1)]
        window_pages = [window()]
        check(
            counted(window_pages[0]) == len(expected),
            f"count {window_pages[0].count}, not {len(expected)}",
        )
        while (link := window_pages[-1].next_) is not None:
            check(len(window_pages) < len(expected), "filtered `next` does not stop")
            # The links keep the filters and the ordering, for clients that follow them as they are.
            query = link_query(link)
            check(
                query.get("ordering") == ["-timestamp"]
                and query.get("name__icontains") == [RUN_TAG.upper()],
                f"a filtered `next` link lost its parameters: {link}",
            )
            window_pages.append(window(page_of(link)))
        check([len(p.results) for p in window_pages] == [3, 3, 2], "pages of 3 for 8 readings")
        filtered = [station for p in window_pages for station in p.results]
        check(
            filtered == expected,
            f"filtered and ordered: {[s.name for s in filtered]}, "
            f"expected {[s.name for s in expected]}",
        )
        print(f"ok  filter and order: {len(filtered)} of this run's readings, newest first")

        # Keyset paging: `cursor=` (empty) starts the walk; `next` and `previous` carry opaque
        # tokens, passed back with the same filters and ordering (a token is bound to its
        # ordering). Cursor pages are not counted: `count` is absent, not null.
        def by_cursor(cursor: str) -> PaginatedStationList:
            return expect(
                list_stations.sync_detailed(
                    client=admin,
                    cursor=cursor,
                    name_icontains=RUN_TAG,
                    ordering="-temperature",
                    page_size=CURSOR_PAGE_SIZE,
                ),
                HTTPStatus.OK,
                PaginatedStationList,
            )

        walk = [by_cursor("")]
        check(walk[0].previous is None, f"the first cursor page has a previous link: {walk[0]}")
        while (link := walk[-1].next_) is not None:
            check(len(walk) <= EXTRA_READINGS, "cursor `next` does not stop")
            walk.append(by_cursor(cursor_of(link)))
            check(walk[-1].previous is not None, f"cursor page {len(walk)} has no previous link")
        check(
            all(isinstance(p.count, Unset) for p in walk),
            f"a cursor page has a count: {[p.count for p in walk]}",
        )
        walked = [station.id for p in walk for station in p.results]
        # Warmest first: reading n has 20 + n / 10 degrees, so this is the creation order reversed.
        check(
            walked == [extra.id for extra in reversed(extras)],
            f"the cursor walk visited {walked}, not each reading once by falling temperature",
        )
        check(
            len(walk) == math.ceil(EXTRA_READINGS / CURSOR_PAGE_SIZE),
            f"{len(walk)} cursor pages for {EXTRA_READINGS} readings",
        )
        second_previous = walk[1].previous
        check(second_previous is not None, "the second cursor page has no previous link")
        back = by_cursor(cursor_of(second_previous))
        check(
            back.results == walk[0].results and back.previous is None,
            f"`previous` from the second page is not the first: {[s.id for s in back.results]}",
        )
        first_next = walk[0].next_
        check(first_next is not None, "the first cursor page has no next link")
        token = cursor_of(first_next)
        print(f"ok  cursor: {len(walk)} pages, each reading once, and `previous` leads back")

        # Retrieve
        fetched = expect(
            retrieve_station.sync_detailed(reading.id, client=admin), HTTPStatus.OK, Station
        )
        check(fetched == reading, f"retrieved {fetched}, created {reading}")
        print("ok  retrieve")

        # Replace
        replacement = StationInput(
            name="CityName", timestamp=1393926311, temperature=29, lat=30.733315, lon=76.779418
        )
        replaced = expect(
            update_station.sync_detailed(reading.id, client=admin, body=replacement),
            HTTPStatus.OK,
            Station,
        )
        check(same_reading(replaced, replacement), f"PUT gave {replaced}")
        check((replaced.id, replaced.url) == (reading.id, reading.url), "PUT changed the id")
        print("ok  update (PUT)")

        # Change
        changed = expect(
            partial_update_station.sync_detailed(
                reading.id, client=admin, body=StationPatchInput(temperature=29.5)
            ),
            HTTPStatus.OK,
            Station,
        )
        check(changed.temperature == 29.5, f"PATCH gave {changed}")
        check(
            (changed.name, changed.timestamp, changed.lat, changed.lon)
            == (replaced.name, replaced.timestamp, replaced.lat, replaced.lon),
            "PATCH changed fields it was not given",
        )
        unchanged = expect(
            partial_update_station.sync_detailed(
                reading.id, client=admin, body=StationPatchInput()
            ),
            HTTPStatus.OK,
            Station,
        )
        check(unchanged == changed, "an empty PATCH changed the reading")
        print("ok  partial update (PATCH)")

        # 400: field errors decode into ValidationErrors, one list of messages per failing field
        invalid = StationInput(name="", timestamp=1393926310, temperature=28, lat=91, lon=76.5)
        errors = expect(
            create_station.sync_detailed(client=admin, body=invalid),
            HTTPStatus.BAD_REQUEST,
            ValidationErrors,
        )
        check(errors.name == ["This field may not be blank."], f"name errors: {errors.name}")
        check(
            errors.lat == ["Ensure this value is less than or equal to 90."],
            f"lat errors: {errors.lat}",
        )
        check(
            all(isinstance(v, Unset) for v in (errors.timestamp, errors.temperature, errors.lon)),
            f"valid fields reported: {errors}",
        )
        patch_errors = expect(
            partial_update_station.sync_detailed(
                reading.id, client=admin, body=StationPatchInput(lon=181)
            ),
            HTTPStatus.BAD_REQUEST,
            ValidationErrors,
        )
        check(
            patch_errors.lon == ["Ensure this value is less than or equal to 180."],
            f"lon errors: {patch_errors.lon}",
        )
        print("ok  400: field errors decode into ValidationErrors")

        # 400: bad list parameters decode into QueryParameterErrors, one list of messages per
        # parameter. The timestamp is not whole (the generated argument is an `int`, but Python
        # does not enforce it; the TypeScript program sends the same value as a typed `number`).
        query_errors = expect(
            list_stations.sync_detailed(
                client=admin,
                timestamp_gte=FIRST_TIMESTAMP + 0.5,  # type: ignore[arg-type]
                ordering="colour",
                page_size=0,
            ),
            HTTPStatus.BAD_REQUEST,
            QueryParameterErrors,
        )
        check(
            query_errors.additional_properties == {
                "timestamp__gte": ["Enter a whole number."],
                "ordering": [
                    "Select a valid choice. colour is not one of the available choices "
                    "(id, timestamp, temperature, name, each optionally prefixed with -)."
                ],
                "page_size": ["Ensure this value is greater than or equal to 1."],
            },
            f"query parameter errors: {query_errors.additional_properties}",
        )
        # A token changed in the middle fails its signature; an intact one fails with another
        # ordering than the one it was made for.
        middle = len(token) // 2
        tampered = token[:middle] + ("B" if token[middle] == "A" else "A") + token[middle + 1:]
        for cursor, ordering in ((tampered, "-temperature"), (token, "temperature")):
            cursor_errors = expect(
                list_stations.sync_detailed(
                    client=admin,
                    cursor=cursor,
                    name_icontains=RUN_TAG,
                    ordering=ordering,
                    page_size=CURSOR_PAGE_SIZE,
                ),
                HTTPStatus.BAD_REQUEST,
                QueryParameterErrors,
            )
            check(
                cursor_errors.additional_properties == {"cursor": ["Invalid cursor."]},
                f"cursor {cursor!r}, ordering {ordering}: {cursor_errors.additional_properties}",
            )
        print("ok  400: bad list parameters and cursors decode into QueryParameterErrors")

        # Delete, and 404 afterwards
        deleted = destroy_station.sync_detailed(reading.id, client=admin)
        check(deleted.status_code == HTTPStatus.NO_CONTENT, f"DELETE: {deleted.status_code}")
        check(deleted.content == b"", "a 204 with a body")
        gone = expect(
            retrieve_station.sync_detailed(reading.id, client=admin),
            HTTPStatus.NOT_FOUND,
            ErrorDetail,
        )
        check(gone.detail == "No Station matches the given query.", f"404: {gone.detail}")
        print("ok  destroy (DELETE), then 404 decodes into ErrorDetail")

        past_the_end = expect(
            list_stations.sync_detailed(client=admin, page=str(pages + 1)),
            HTTPStatus.NOT_FOUND,
            ErrorDetail,
        )
        check(past_the_end.detail == "Invalid page.", f"404: {past_the_end.detail}")
        print("ok  404 for a page past the end decodes into ErrorDetail")

        # 401: without credentials, and with a wrong password
        with anonymous:
            denied = list_stations.sync_detailed(client=anonymous)
            detail = expect(denied, HTTPStatus.UNAUTHORIZED, ErrorDetail)
            check(
                detail.detail == "Authentication credentials were not provided.",
                f"401: {detail.detail}",
            )
            check(
                denied.headers.get("www-authenticate") == 'Basic realm="station-api"',
                f"challenge: {denied.headers.get('www-authenticate')}",
            )
        with impostor:
            wrong = expect(
                list_stations.sync_detailed(client=impostor), HTTPStatus.UNAUTHORIZED, ErrorDetail
            )
            check(wrong.detail == "Invalid username/password.", f"401: {wrong.detail}")
        print("ok  401 decodes into ErrorDetail, with the Basic challenge")

        # A device token: issued by staff (basic auth), then sent as `Bearer <key>` (the
        # client's default prefix) to add readings; a DELETE with it is refused.
        issued = expect(
            create_token.sync_detailed(
                client=admin,
                body=TokenInput(
                    label=f"{RUN_TAG}-device", scopes=[ScopeName.WRITE, ScopeName.READ]
                ),
            ),
            HTTPStatus.CREATED,
            IssuedToken,
        )
        check(len(issued.key) >= 32, "a token key shorter than 128 bits")
        check(issued.prefix == issued.key[:8], f"prefix {issued.prefix}")
        device = AuthenticatedClient(
            base_url=base_url, token=issued.key, raise_on_unexpected_status=True
        )
        with device:
            device_body = StationInput(
                name=f"{RUN_TAG}-device", timestamp=FIRST_TIMESTAMP, temperature=19.5,
                lat=-45.5, lon=170.25,
            )
            made = expect(
                create_station.sync_detailed(client=device, body=device_body),
                HTTPStatus.CREATED,
                Station,
            )
            extra_ids.append(made.id)
            check(same_reading(made, device_body), f"created with a token: {made}")
            backlog = [
                StationInput(
                    name=f"{RUN_TAG}-device", timestamp=FIRST_TIMESTAMP + 100 + n,
                    temperature=19.5, lat=-45.5, lon=170.25,
                )
                for n in (1, 2)
            ]
            uploaded = expect(
                create_station.sync_detailed(client=device, body=backlog),
                HTTPStatus.CREATED,
                list,
            )
            check(
                len(uploaded) == len(backlog)
                and all(same_reading(r, b) for r, b in zip(uploaded, backlog)),
                f"a bulk upload with a token: {uploaded}",
            )
            extra_ids.extend(r.id for r in uploaded)
            print("ok  bulk upload with a token: the readings, in order")
            refused = expect(
                destroy_station.sync_detailed(made.id, client=device),
                HTTPStatus.FORBIDDEN,
                ErrorDetail,
            )
            check(
                refused.detail == "You do not have permission to perform this action.",
                f"403: {refused.detail}",
            )
        revoked = destroy_token.sync_detailed(issued.id, client=admin)
        check(revoked.status_code == HTTPStatus.NO_CONTENT, f"revoke: {revoked.status_code}")
        print("ok  device token: issued by staff, creates readings, refused a DELETE (403)")

        # Leave the server as we found it.
        for station_id in extra_ids:
            response = destroy_station.sync_detailed(station_id, client=admin)
            check(response.status_code == HTTPStatus.NO_CONTENT, f"cleanup of {station_id}")

    print("python client: all checks passed")


if __name__ == "__main__":
    try:
        main()
    except CheckFailed as failure:
        print(f"FAILED: {failure}", file=sys.stderr)
        sys.exit(1)

#!/usr/bin/env python3
"""Drives a live station-api through the generated Python client, and nothing else.

Covers what an SDK user does: basic auth; create the textbook's reading; list every page by
following `next`; retrieve; replace (PUT); change (PATCH); delete; and one of each error body
(400 field errors, 401, 404) decoded into the client's typed models. Exits non-zero on the first
failed check. Generate the client first with `sdk/generate.sh`.

Usage:
    STATION_URL=http://127.0.0.1:8000 STATION_USERNAME=admin STATION_PASSWORD=... \\
        .venv/sdk/bin/python sdk/python/check_client.py
"""

from __future__ import annotations

import base64
import json
import math
import os
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
from station_api_client.models import (  # noqa: E402
    ApiRoot,
    ErrorDetail,
    PaginatedStationList,
    Station,
    StationInput,
    StationPatchInput,
    ValidationErrors,
)
from station_api_client.types import Response, Unset  # noqa: E402

T = TypeVar("T")

# The textbook's reading (its curl session sends these as strings; the SDK sends typed JSON).
TEXTBOOK = StationInput(
    name="CityName", timestamp=1393926310, temperature=28, lat=30.733315, lon=76.779418
)
PAGE_SIZE = 10
EXTRA_READINGS = 2 * PAGE_SIZE  # with the textbook's, at least three pages


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


def page_of(link: str) -> str:
    """The `page` query parameter of a `next`/`previous` link, for `list_stations(page=...)`."""
    parts = urlsplit(link)
    check(parts.path == "/station/", f"a page link should point at /station/: {link}")
    return parse_qs(parts.query, keep_blank_values=True).get("page", [""])[0]


def walk_all_pages(client: AuthenticatedClient) -> tuple[list[Station], int, int]:
    """Every reading, following `next` from the first page; with the count and the page count."""
    first = expect(list_stations.sync_detailed(client=client), HTTPStatus.OK, PaginatedStationList)
    check(first.previous is None, f"page 1 has a previous link: {first.previous}")
    readings: list[Station] = []
    page, pages = first, 1
    while True:
        check(page.count == first.count, "the count changed while paging")
        check(len(page.results) <= PAGE_SIZE, f"a page holds {len(page.results)} readings")
        readings.extend(page.results)
        if page.next_ is None:
            break
        check(pages <= first.count // PAGE_SIZE + 1, "`next` does not stop")
        number = page_of(page.next_)
        page = expect(
            list_stations.sync_detailed(client=client, page=number),
            HTTPStatus.OK,
            PaginatedStationList,
        )
        pages += 1
        check(page.previous is not None, f"page {number} has no previous link")
    return readings, first.count, pages


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
        extra_ids = []
        for n in range(EXTRA_READINGS):
            body = StationInput(
                name=f"sdk-python-{n}", timestamp=1393926310 + n, temperature=20 + n / 10,
                lat=-45.5, lon=170.25,
            )
            extra_ids.append(expect(
                create_station.sync_detailed(client=admin, body=body), HTTPStatus.CREATED, Station
            ).id)
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

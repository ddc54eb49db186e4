#!/usr/bin/python3
"""A test double of AWS IoT Core's Device Shadow service, over MQTT.

It connects to a broker (a local mosquitto with mutual TLS in the tests),
subscribes to the shadow request topics of every thing, and answers get,
update and delete requests for classic and named shadows the way the AWS
service does: on `<request topic>/accepted` or `/rejected`, plus
`update/documents` and `update/delta` after an accepted update. Shadows
live in memory only, for the life of the process.

    shadow_service.py --host 127.0.0.1 --port PORT --cafile CA --cert CERT --key KEY
                      [--client-id shadow-double] [--persistent-session]

Prints `shadow-service ready` on stdout once its subscriptions are in place
(a request published before that could be missed), and one line per
request and per answer on stderr. Anything published on
`shadow-double/pause` makes it drop requests unanswered (a service that
stopped answering, without killing the process) until something is
published on `shadow-double/resume`. SIGTERM or SIGINT: exit 0.

MQTT 3.1.1 with a clean session by default. AWS's service never misses a
request the broker accepted; this double, reconnecting after a broker
restart, misses what was published before it subscribed again. With
`--persistent-session` the broker keeps its subscriptions and queues
requests for it meanwhile (across a restart too, when the broker persists
its sessions), as a test of an outage needs.

Runs with Debian 12's python3-paho-mqtt (paho-mqtt 1.6).
"""
from __future__ import annotations

import argparse
import json
import signal
import ssl
import sys
import time
from dataclasses import dataclass
from typing import Any, Optional

import paho.mqtt.client as mqtt

READY_LINE = "shadow-service ready"

REQUEST_FILTERS = [
    "$aws/things/+/shadow/get",
    "$aws/things/+/shadow/update",
    "$aws/things/+/shadow/delete",
    "$aws/things/+/shadow/name/+/get",
    "$aws/things/+/shadow/name/+/update",
    "$aws/things/+/shadow/name/+/delete",
]
PAUSE_TOPIC = "shadow-double/pause"
RESUME_TOPIC = "shadow-double/resume"

# AWS refuses a shadow update larger than 8 KB with 413.
MAX_UPDATE_BYTES = 8192
# The sections a request's `state` may carry (`delta` is computed, never sent).
SECTIONS = ("desired", "reported")

Json = Any
# Path of a value in a shadow: ("desired", "lights", "color"), or with list
# indexes ("reported", "readings", 2).
Path = tuple


class Rejection(Exception):
    """A request the service refuses: becomes a `/rejected` answer."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def epoch_seconds() -> int:
    return int(time.time())


def same_value(a: Json, b: Json) -> bool:
    """JSON equality. Python's == would call true equal to 1 and 1 equal to
    1.0; a shadow compares the values the devices sent."""
    return json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)


def merge(current: dict, patch: dict) -> dict:
    """The document after an update: objects merge key by key, `null`
    removes a key, anything else replaces the value (arrays whole). An object
    left empty disappears, so a section emptied key by key reads as absent."""
    result = dict(current)
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        elif isinstance(value, dict):
            existing = result.get(key)
            merged = merge(existing if isinstance(existing, dict) else {}, value)
            if merged:
                result[key] = merged
            else:
                result.pop(key, None)
        else:
            result[key] = value
    return result


def difference(desired: dict, reported: Json) -> dict:
    """The delta: every desired value the reported side does not match,
    descending into objects present on both sides. Keys only reported never
    appear."""
    reported_object = reported if isinstance(reported, dict) else {}
    delta: dict = {}
    for key, wanted in desired.items():
        if key not in reported_object:
            delta[key] = wanted
            continue
        actual = reported_object[key]
        if isinstance(wanted, dict) and isinstance(actual, dict):
            nested = difference(wanted, actual)
            if nested:
                delta[key] = nested
        elif not same_value(wanted, actual):
            delta[key] = wanted
    return delta


def leaf_paths(value: Json, path: Path) -> list:
    """Every leaf under `value`; array elements are leaves of their own (AWS
    gives each element its own metadata entry)."""
    if isinstance(value, dict):
        return [leaf for key, item in value.items() for leaf in leaf_paths(item, path + (key,))]
    if isinstance(value, list):
        return [leaf for index, item in enumerate(value) for leaf in leaf_paths(item, path + (index,))]
    return [path]


def metadata_tree(value: Json, path: Path, stamp_of) -> Json:
    """The metadata mirroring `value`: `{"timestamp": T}` per leaf."""
    if isinstance(value, dict):
        return {key: metadata_tree(item, path + (key,), stamp_of) for key, item in value.items()}
    if isinstance(value, list):
        return [metadata_tree(item, path + (index,), stamp_of) for index, item in enumerate(value)]
    return {"timestamp": stamp_of(path)}


class Shadow:
    """One shadow document: desired and reported state, when each leaf was
    last written, and the version."""

    def __init__(self) -> None:
        self.sections: dict = {}  # "desired"/"reported" -> non-empty object
        self.stamps: dict = {}  # leaf path -> epoch seconds of its last write
        self.version = 0

    def apply(self, state: dict, at: int) -> None:
        """Merges an update's `state` (already validated) and counts a version."""
        for section in SECTIONS:
            if section not in state:
                continue
            patch = state[section]
            merged = {} if patch is None else merge(self.sections.get(section, {}), patch)
            if merged:
                self.sections[section] = merged
            else:
                self.sections.pop(section, None)
            if patch is not None:
                for path in leaf_paths(patch, (section,)):
                    self.stamps[path] = at
        # Forget the stamps of leaves that are gone (deleted or replaced).
        live = set(leaf_paths(self.sections, ()))
        self.stamps = {path: stamp for path, stamp in self.stamps.items() if path in live}
        self.version += 1

    def delta(self) -> dict:
        return difference(self.sections.get("desired", {}), self.sections.get("reported", {}))

    def metadata(self) -> dict:
        return metadata_tree(self.sections, (), self.stamp_of)

    def delta_metadata(self, delta: dict) -> dict:
        """The delta's leaves carry the time their desired value was written."""
        return metadata_tree(delta, ("desired",), self.stamp_of)

    def stamp_of(self, path: Path) -> int:
        return self.stamps.get(path, 0)

    def snapshot(self) -> dict:
        """The document as `update/documents` shows it (no delta there)."""
        return {"state": dict(self.sections), "metadata": self.metadata(), "version": self.version}


@dataclass(frozen=True)
class Request:
    topic: str
    thing: str
    shadow_name: Optional[str]  # None: the thing's classic (unnamed) shadow
    operation: str  # get, update or delete

    @property
    def key(self) -> tuple:
        return (self.thing, self.shadow_name)

    @property
    def display_name(self) -> str:
        """How AWS names the shadow in a 404: the thing, or `thing~name`."""
        return self.thing if self.shadow_name is None else f"{self.thing}~{self.shadow_name}"


def parse_topic(topic: str) -> Optional[Request]:
    """`$aws/things/T/shadow/OP` or `$aws/things/T/shadow/name/N/OP`; None
    for anything else."""
    parts = topic.split("/")
    if len(parts) < 5 or parts[0] != "$aws" or parts[1] != "things" or parts[3] != "shadow":
        return None
    if len(parts) == 5:
        name, operation = None, parts[4]
    elif len(parts) == 7 and parts[4] == "name":
        name, operation = parts[5], parts[6]
    else:
        return None
    if operation not in ("get", "update", "delete"):
        return None
    return Request(topic=topic, thing=parts[2], shadow_name=name, operation=operation)


def _refuse_constant(name: str) -> None:
    # Python's json accepts NaN and Infinity; JSON (and AWS) does not.
    raise ValueError(f"not JSON: {name}")


def decode_json(payload: bytes) -> tuple[bool, Json]:
    """(True, value) for a UTF-8 JSON text, (False, None) otherwise."""
    try:
        return True, json.loads(payload.decode("utf-8"), parse_constant=_refuse_constant)
    except (UnicodeDecodeError, ValueError):
        return False, None


class ShadowStore:
    """The service's logic, without MQTT: a request in, the answers out as
    (topic, document) pairs in the order AWS publishes them."""

    def __init__(self) -> None:
        self.shadows: dict = {}  # (thing, name or None) -> Shadow

    def handle(self, request: Request, payload: bytes) -> list:
        parsed, document = decode_json(payload)
        token = document.get("clientToken") if parsed and isinstance(document, dict) else None
        has_token = parsed and isinstance(document, dict) and "clientToken" in document
        at = epoch_seconds()
        try:
            if request.operation == "get":
                answers = self.get(request, at)
            elif request.operation == "delete":
                answers = self.delete(request, document if parsed else None, at)
            else:
                answers = self.update(request, payload, parsed, document, at)
        except Rejection as rejection:
            answers = [(request.topic + "/rejected", {"code": rejection.code, "message": rejection.message, "timestamp": at})]
        except Exception as error:  # a bug here: answer as AWS would, rather than go silent
            log(f"internal error on {request.topic}: {error!r}")
            answers = [(request.topic + "/rejected", {"code": 500, "message": "Internal service failure", "timestamp": at})]
        if has_token:
            for _, answer in answers:
                answer["clientToken"] = token
        return answers

    def existing(self, request: Request) -> Shadow:
        shadow = self.shadows.get(request.key)
        if shadow is None:
            raise Rejection(404, f"No shadow exists with name: '{request.display_name}'")
        return shadow

    def get(self, request: Request, at: int) -> list:
        shadow = self.existing(request)
        state = dict(shadow.sections)
        delta = shadow.delta()
        if delta:
            state["delta"] = delta
        return [(request.topic + "/accepted", {
            "state": state, "metadata": shadow.metadata(), "version": shadow.version, "timestamp": at,
        })]

    def delete(self, request: Request, document: Json, at: int) -> list:
        shadow = self.existing(request)
        # A delete may name the version it expects, as an update may.
        if isinstance(document, dict) and "version" in document:
            check_version(document["version"], shadow.version)
        del self.shadows[request.key]
        return [(request.topic + "/accepted", {"version": shadow.version, "timestamp": at})]

    def update(self, request: Request, payload: bytes, parsed: bool, document: Json, at: int) -> list:
        if len(payload) > MAX_UPDATE_BYTES:
            raise Rejection(413, "The payload exceeds the maximum size allowed")
        state = validate_update(parsed, document)
        shadow = self.shadows.get(request.key)
        if "version" in document:
            check_version(document["version"], shadow.version if shadow else 0)
        previous = shadow.snapshot() if shadow else None
        if shadow is None:
            shadow = self.shadows[request.key] = Shadow()
        shadow.apply(state, at)

        accepted = {
            "state": state,
            # Every leaf the request wrote, deletions included, at this time.
            "metadata": metadata_tree(state, (), lambda _path: at),
            "version": shadow.version,
            "timestamp": at,
        }
        documents: dict = {}
        if previous is not None:
            documents["previous"] = previous
        documents.update({"current": shadow.snapshot(), "timestamp": at})
        answers = [(request.topic + "/accepted", accepted), (request.topic + "/documents", documents)]

        # Devices act on /delta: only an update of `desired` that leaves a
        # difference publishes one (a report that diverges does not).
        delta = shadow.delta()
        if delta and "desired" in state:
            answers.append((request.topic + "/delta", {
                "version": shadow.version, "timestamp": at,
                "state": delta, "metadata": shadow.delta_metadata(delta),
            }))
        return answers


def validate_update(parsed: bool, document: Json) -> dict:
    """The request's `state`, or the Rejection AWS would answer with."""
    if not parsed:
        raise Rejection(400, "Payload contains invalid json")
    if not isinstance(document, dict) or "state" not in document:
        raise Rejection(400, "Missing required node: state")
    state = document["state"]
    if not isinstance(state, dict):
        raise Rejection(400, "State node must be an object")
    for key in state:
        if key not in SECTIONS:
            raise Rejection(400, f"State contains an invalid node: '{key}'")
    for section in SECTIONS:
        if section in state and state[section] is not None and not isinstance(state[section], dict):
            raise Rejection(400, f"{section.capitalize()} node must be an object")
    return state


def check_version(given: Json, current: int) -> None:
    # bool is an int in Python; `"version": true` is not a version.
    if isinstance(given, bool) or not isinstance(given, int):
        raise Rejection(400, "Invalid version")
    if given != current:
        raise Rejection(409, "Version conflict")


def log(*words: str) -> None:
    now = time.time()
    stamp = time.strftime("%H:%M:%S", time.localtime(now)) + f".{int(now * 1000) % 1000:03d}"
    print(stamp, "shadow-service:", *words, file=sys.stderr, flush=True)


def shown(payload: bytes, limit: int = 300) -> str:
    """A payload on one log line."""
    text = payload[:limit].decode("utf-8", "replace").replace("\r", "\\r").replace("\n", "\\n")
    return text + ("..." if len(payload) > limit else "")


def encode(document: dict) -> bytes:
    # ASCII with \u escapes: a lone surrogate a client sent cannot break it.
    return json.dumps(document, separators=(",", ":")).encode("ascii")


class ShadowDouble:
    """The MQTT side: subscriptions, pause/resume, answers at QoS 1."""

    def __init__(self, arguments: argparse.Namespace) -> None:
        self.store = ShadowStore()
        self.paused = False
        self.ready = False
        # Set from paho's thread; the main thread exits with it.
        self.fatal: Optional[str] = None
        self.client = mqtt.Client(
            client_id=arguments.client_id, clean_session=not arguments.persistent_session, protocol=mqtt.MQTTv311
        )
        self.client.tls_set_context(tls_context(arguments))
        # The tests restart brokers: be back within a second of the broker.
        self.client.reconnect_delay_set(min_delay=0.2, max_delay=1)
        self.client.on_connect = self.on_connect
        self.client.on_subscribe = self.on_subscribe
        self.client.on_message = self.on_message
        self.client.on_disconnect = self.on_disconnect

    def on_connect(self, client: mqtt.Client, _userdata: Any, _flags: dict, rc: int) -> None:
        if rc != 0:
            # A refused CONNECT does not fix itself: fail loudly, not retry forever.
            self.fatal = f"connection refused: {mqtt.connack_string(rc)}"
            return
        log("connected")
        # After every (re)connect: a clean session starts with none (and a
        # persistent one the broker lost is no different).
        topics = [(topic, 1) for topic in REQUEST_FILTERS + [PAUSE_TOPIC, RESUME_TOPIC]]
        client.subscribe(topics)

    def on_subscribe(self, _client: mqtt.Client, _userdata: Any, _mid: int, granted: tuple) -> None:
        # A broker may refuse a filter (0x80): without it the double would
        # sit silent, and a test would only see timeouts.
        if any(qos == 128 for qos in granted):
            self.fatal = f"subscription refused by the broker (granted {list(granted)})"
            return
        if not self.ready:
            self.ready = True
            print(READY_LINE, flush=True)
        log("subscribed")

    def on_disconnect(self, _client: mqtt.Client, _userdata: Any, rc: int) -> None:
        if rc != 0:
            log(f"connection lost ({mqtt.error_string(rc)}); reconnecting")

    def on_message(self, client: mqtt.Client, _userdata: Any, message: mqtt.MQTTMessage) -> None:
        topic, payload = message.topic, bytes(message.payload)
        if topic in (PAUSE_TOPIC, RESUME_TOPIC):
            self.paused = topic == PAUSE_TOPIC
            log("paused: requests go unanswered" if self.paused else "resumed")
            return
        request = parse_topic(topic)
        if request is None:
            log(f"ignored {topic}")
            return
        log(f"request {topic} ({len(payload)} bytes): {shown(payload)}")
        if self.paused:
            log(f"paused, no answer to {topic}")
            return
        for answer_topic, document in self.store.handle(request, payload):
            body = encode(document)
            client.publish(answer_topic, body, qos=1, retain=False)
            log(f"answer {answer_topic}: {shown(body)}")

    def run(self, host: str, port: int) -> int:
        # Signals wait for the main thread's sigtimedwait: blocked here, before
        # paho's thread starts, so that thread inherits the mask.
        stop_signals = {signal.SIGTERM, signal.SIGINT}
        signal.pthread_sigmask(signal.SIG_BLOCK, stop_signals)
        try:
            self.client.connect(host, port, keepalive=30)
        except (OSError, ssl.SSLError) as error:
            log(f"cannot connect to {host}:{port}: {error}")
            return 1
        self.client.loop_start()
        try:
            while self.fatal is None:
                received = signal.sigtimedwait(stop_signals, 0.2)
                if received is not None:
                    log(f"stopping on {signal.Signals(received.si_signo).name}")
                    return 0
            log(f"fatal: {self.fatal}")
            return 1
        finally:
            self.client.disconnect()
            self.client.loop_stop()


def tls_context(arguments: argparse.Namespace) -> ssl.SSLContext:
    """Verifies the broker against the CA and its name (the IP address in the
    certificate's SAN when the host is 127.0.0.1); presents our certificate.
    Built here rather than by paho's tls_set, which leaves the name check to
    ssl.match_hostname (deprecated, gone in Python 3.12)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # CERT_REQUIRED, check_hostname
    context.load_verify_locations(cafile=arguments.cafile)
    context.load_cert_chain(certfile=arguments.cert, keyfile=arguments.key)
    return context


def parse_arguments(argv: list) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Test double of the AWS IoT Device Shadow service (MQTT).")
    parser.add_argument("--host", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--cafile", required=True, help="CA that signed the broker's certificate")
    parser.add_argument("--cert", required=True, help="client certificate (PEM)")
    parser.add_argument("--key", required=True, help="its private key (PEM)")
    parser.add_argument("--client-id", default="shadow-double")
    parser.add_argument("--persistent-session", action="store_true",
                        help="clean session off: the broker queues requests while the double is disconnected")
    return parser.parse_args(argv)


def main(argv: list) -> int:
    arguments = parse_arguments(argv)
    try:
        double = ShadowDouble(arguments)
    except (OSError, ssl.SSLError) as error:
        log(f"cannot load the TLS files: {error}")
        return 1
    return double.run(arguments.host, arguments.port)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

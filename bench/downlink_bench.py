"""The downlink scenario's measuring apparatus (bench/bench.py, scenario
`downlink`): MQTT clients on paho (Debian's python3-paho-mqtt), the shadow
service double of the integration tests, and HTTP long-polls through urllib.

Each figure is a sequence of single round trips, each started only after
the previous one ended (and a 20 ms pause, so a long-poll is back in place
before the next command): what one device sees, not a throughput."""

import json
import os
import queue
import socket
import ssl
import subprocess
import threading
import time
import urllib.error
import urllib.request

import paho.mqtt.client as mqtt

LOOPBACK = "127.0.0.1"
PAUSE_S = 0.02


def summary(samples_ns):
    """p50 / p99 / max in microseconds, as the bench's latency rows take them."""
    if not samples_ns:
        return {"p50": 0, "p99": 0, "max": 0, "count": 0}
    ordered = sorted(samples_ns)
    pick = lambda q: ordered[min(len(ordered) - 1, int(q * len(ordered)))] / 1000
    return {"p50": pick(0.50), "p99": pick(0.99), "max": ordered[-1] / 1000, "count": len(ordered)}


class Client:
    """A connected paho client with the broker's test client certificate."""

    def __init__(self, broker, client_id, on_message=None):
        context = ssl.create_default_context(cafile=os.path.join(broker.dir, "ca.pem"))
        context.load_cert_chain(os.path.join(broker.dir, "client.pem"), os.path.join(broker.dir, "client.key"))
        self.client = mqtt.Client(client_id=client_id, clean_session=True)
        self.client.tls_set_context(context)
        self.subscribed = threading.Event()
        self.connected = threading.Event()
        self.client.on_connect = lambda c, u, f, rc: self.connected.set() if rc == 0 else None
        self.client.on_subscribe = lambda c, u, mid, granted: self.subscribed.set()
        if on_message:
            self.client.on_message = lambda c, u, message: on_message(message.topic, message.payload)
        self.client.connect(LOOPBACK, broker.port, keepalive=60)
        # As the gateway's own connections: a small packet behind an
        # unacknowledged one must not wait for the peer's delayed ACK.
        self.client.socket().setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.client.loop_start()
        if not self.connected.wait(20):
            raise RuntimeError(f"{client_id}: no CONNACK from the broker")

    def subscribe(self, topic):
        self.subscribed.clear()
        self.client.subscribe(topic, qos=1)
        if not self.subscribed.wait(20):
            raise RuntimeError(f"no SUBACK for {topic}")

    def publish(self, topic, payload):
        self.client.publish(topic, payload, qos=1).wait_for_publish(20)

    def close(self):
        self.client.loop_stop()
        self.client.disconnect()


class DownlinkBench:
    def __init__(self, broker, gateway, run, repo, work):
        self.broker, self.gateway, self.run_id, self.repo, self.work = broker, gateway, run, repo, work

    def url(self, path):
        return f"http://{LOOPBACK}:{self.gateway.http_port}{path}"

    def http_get(self, path, timeout=40):
        try:
            with urllib.request.urlopen(self.url(path), timeout=timeout) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as error:
            return error.code, error.read()

    def run(self, count):
        out = {}
        out["command"] = self.commands_through_gateway(count)
        out["command_bare"] = self.commands_bare(count)
        double = self.start_double()
        try:
            out["shadow"] = self.shadow_through_gateway(count)
            out["shadow_bare"] = self.shadow_bare(count)
        finally:
            double.terminate()
            double.wait(10)
        return out

    # -- commands

    def ping_pong(self, publisher, topic, received, count):
        samples, lost = [], 0
        for index in range(count):
            time.sleep(PAUSE_S)
            payload = f"{index}".encode()
            began = time.monotonic_ns()
            publisher.publish(topic, payload)
            try:
                while True:
                    body, at = received.get(timeout=5)
                    if body == payload:
                        samples.append(at - began)
                        break
            except queue.Empty:
                lost += 1
        result = summary(samples)
        result["lost"] = lost
        return result

    def commands_through_gateway(self, count):
        path = f"/bench-cmd/{self.run_id}/dev-1"
        topic = f"cmd/bench/{self.run_id}/dev-1"
        # The first visit makes the gateway follow the device's commands.
        status, _ = self.http_get(path)
        if status != 204:
            raise RuntimeError(f"first GET {path}: {status}, expected 204")
        time.sleep(0.5)
        received, stop = queue.Queue(), threading.Event()

        def poll():
            while not stop.is_set():
                status, body = self.http_get(path + "?wait=30")
                if status == 200:
                    received.put((body, time.monotonic_ns()))

        poller = threading.Thread(target=poll, daemon=True)
        poller.start()
        publisher = Client(self.broker, f"bench-pub-{self.run_id}")
        try:
            time.sleep(0.2)
            return self.ping_pong(publisher, topic, received, count)
        finally:
            stop.set()
            publisher.publish(topic, b"stop")  # ends the last long-poll
            poller.join(40)
            publisher.close()

    def commands_bare(self, count):
        topic = f"cmd/bench/{self.run_id}/bare"
        received = queue.Queue()
        subscriber = Client(self.broker, f"bench-sub-{self.run_id}", lambda t, p: received.put((p, time.monotonic_ns())))
        publisher = Client(self.broker, f"bench-pub2-{self.run_id}")
        try:
            subscriber.subscribe(topic)
            return self.ping_pong(publisher, topic, received, count)
        finally:
            subscriber.close()
            publisher.close()

    # -- shadows

    def start_double(self):
        script = os.path.join(self.repo, "Tests", "Doubles", "shadow_service.py")
        log = open(os.path.join(self.work, "shadow-double.log"), "w")
        child = subprocess.Popen(
            ["/usr/bin/python3", script, "--host", LOOPBACK, "--port", str(self.broker.port),
             "--cafile", os.path.join(self.broker.dir, "ca.pem"), "--cert", os.path.join(self.broker.dir, "client.pem"),
             "--key", os.path.join(self.broker.dir, "client.key"), "--client-id", f"bench-shadow-{self.run_id}"],
            stdout=subprocess.PIPE, stderr=log, text=True)
        line = child.stdout.readline()
        if "ready" not in line:
            child.kill()
            raise RuntimeError("the shadow double did not start (see shadow-double.log)")
        return child

    def shadow_through_gateway(self, count):
        path = "/bench-shadow/dev-1"
        # A shadow to read; the first request also makes the subscriptions.
        request = urllib.request.Request(self.url(path), data=b'{"level":1}', method="POST")
        with urllib.request.urlopen(request, timeout=20) as response:
            if response.status != 200:
                raise RuntimeError(f"POST {path}: {response.status}")
        samples, errors = [], 0
        for _ in range(count):
            began = time.monotonic_ns()
            status, _ = self.http_get(path, timeout=10)
            if status == 200:
                samples.append(time.monotonic_ns() - began)
            else:
                errors += 1
        result = summary(samples)
        result["errors"] = errors
        return result

    def shadow_bare(self, count):
        thing = "dev-1"
        base = f"$aws/things/{thing}/shadow/get"
        received = queue.Queue()
        client = Client(self.broker, f"bench-shadow-client-{self.run_id}", lambda t, p: received.put((t, p)))
        samples, errors = [], 0
        try:
            client.subscribe(base + "/+")
            for index in range(count):
                token = f"bare-{index}"
                began = time.monotonic_ns()
                client.publish(base, json.dumps({"clientToken": token}).encode())
                try:
                    while True:
                        topic, payload = received.get(timeout=5)
                        if json.loads(payload).get("clientToken") == token:
                            if topic.endswith("/accepted"):
                                samples.append(time.monotonic_ns() - began)
                            else:
                                errors += 1
                            break
                except queue.Empty:
                    errors += 1
        finally:
            client.close()
        result = summary(samples)
        result["errors"] = errors
        return result

"""A third-party MQTT consumer over WSS: Eclipse paho-mqtt (Debian python3-paho-mqtt).

Usage: wss_subscriber.py HOST PORT CA_FILE USERNAME TOPIC COUNT TIMEOUT_S
The password comes from $OSP_MQTT_PASSWORD so it never shows on a command line.
Prints one JSON object a line: {"connack": rc}, {"subscribed": [qos...]}, then
{"topic", "payload", "qos", "retain"} per message.
Exit 0 after COUNT messages, 2 on timeout, 3 when the CONNACK refuses us,
4 when the connection drops.
"""
import json
import os
import sys
import time

import paho.mqtt.client as mqtt

host, port, ca_file, username, topic = sys.argv[1:6]
count, timeout_s = int(sys.argv[6]), float(sys.argv[7])
state = {'received': 0, 'exit': None}


def emit(obj):
    print(json.dumps(obj), flush=True)


def on_connect(client, _userdata, _flags, rc):
    emit({'connack': rc})
    if rc != 0:
        state['exit'] = 3
        return
    client.subscribe(topic, qos=1)


def on_subscribe(_client, _userdata, _mid, granted_qos):
    emit({'subscribed': list(granted_qos)})


def on_message(_client, _userdata, msg):
    emit({'topic': msg.topic, 'payload': msg.payload.decode('utf-8', 'replace'), 'qos': msg.qos, 'retain': bool(msg.retain)})
    state['received'] += 1
    if state['received'] >= count:
        state['exit'] = 0


def on_disconnect(_client, _userdata, rc):
    if state['exit'] is None:
        emit({'disconnected': rc})
        state['exit'] = 4


client = mqtt.Client(client_id=f'paho-wss-{os.getpid()}', transport='websockets')
client.ws_set_options(path='/mqtt')
client.tls_set(ca_certs=ca_file)
client.username_pw_set(username, os.environ['OSP_MQTT_PASSWORD'])
client.on_connect = on_connect
client.on_subscribe = on_subscribe
client.on_message = on_message
client.on_disconnect = on_disconnect

deadline = time.monotonic() + timeout_s
client.connect(host, int(port), keepalive=30)
while state['exit'] is None and time.monotonic() < deadline:
    client.loop(timeout=0.2)
if state['exit'] is None:
    emit({'timeout': timeout_s, 'received': state['received']})
    state['exit'] = 2
elif state['exit'] == 0:
    client.disconnect()
sys.exit(state['exit'])

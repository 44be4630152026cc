"""Transports: MQTT (paho-mqtt, MQTT 5) and, later, zeroconf and peer TCP transfer."""

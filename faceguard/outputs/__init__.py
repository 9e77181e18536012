"""What the door tells the building: every decision as a signed webhook, MQTT messages with Home
Assistant discovery, and a card read to the office's OSDP access panel.

One persisted outbox (``outbox``) holds every message until its receiver took it, so a broker or
receiver that is down loses nothing and never slows a frame; ``hub.Outputs`` is what the door
check talks to.
"""

"""A Phoenix cluster on one machine: the AWS emulator and real Salt daemons on loopback.

Test and demo tooling only, never on the runtime path of a master or minion. It needs the
``demo`` extra (``pip install phoenix-salt[demo]``) for the AWS emulator.
"""

"""A Phoenix cluster on one machine: the AWS emulator and real Salt daemons on loopback.

Test, demo and benchmark tooling, in a package of its own (``lab/`` in the repository,
``phoenix-lab``): the ``phoenix-salt`` wheel that masters and minions install holds none of
it. ``make demo`` and ``make test`` install it into their venv.
"""

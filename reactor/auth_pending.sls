{#- Phoenix: a minion key waits for acceptance on this master (salt/auth, act: pend).
    key_runner.accept accepts it only if the registry holds that exact id as a live
    instance and the key matches the one pinned at first acceptance; otherwise the key
    stays pending (or is deleted, for a key that differs from the pinned one, and the
    pinned key is pre-seeded in its place).
    Every other salt/auth event (accepted, rejected, denied, each re-authentication) does
    nothing here: Salt fires salt/auth on every attempt. #}
{%- if data.get('act') == 'pend' and data.get('id') %}
phoenix_accept_pending_key:
  runner.key_runner.accept:
    - minion_id: {{ data['id'] | yaml_dquote }}
{%- endif %}

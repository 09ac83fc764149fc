{#- Phoenix: the registry recorded an instance as terminated
    (phoenix/instance/<id>/terminated). Reconciling that id deletes its keys on this master
    in every state at once; the engine's periodic reconcile does the same on every other
    master. #}
{%- set parts = tag.split('/') %}
{%- if parts | length == 4 and parts[3] == 'terminated' %}
phoenix_delete_terminated_keys:
  runner.key_runner.reconcile:
    - minion_id: {{ parts[2] | yaml_dquote }}
{%- endif %}

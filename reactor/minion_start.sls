{#- Phoenix: a minion (re)started and connected to this master (salt/minion/<id>/start).
    highstate_runner.run starts its first highstate only if it never ran (or a retry is
    due), and only on one master: a restart by the master_list beacon or by Salt's own
    failover finds the record and does nothing. It returns at once; the instance_manager
    engine records the outcome. #}
{%- if data.get('id') %}
phoenix_first_highstate:
  runner.highstate_runner.run:
    - minion_id: {{ data['id'] | yaml_dquote }}
{%- endif %}

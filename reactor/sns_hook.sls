{#- Phoenix: SNS POSTed a message to salt-api's webhook (/hook/phoenix/sns). sns_runner.receive
    verifies it (signature, certificate host, topic allowlist, freshness) before anything
    acts on it; salt-api itself checks nothing of SNS's. The body goes through as one JSON
    string: its exact text is what was signed. #}
{%- if data.get('body') %}
phoenix_sns_receive:
  runner.sns_runner.receive:
    - body: {{ data['body'] | json }}
{%- endif %}

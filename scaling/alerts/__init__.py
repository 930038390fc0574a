"""SLOs, alerts and their notifications (a Django app, label `alerts`).

Map for the next engineer:
- rules.py: pure judgement: burn rates, error budget, DCGM and vLLM thresholds -> findings.
- models.py: Alert (one row per firing), AlertSilence, AlertNote (ack/silence audit), Receiver
  (URL encrypted at rest), Delivery (one per receiver and event, its attempts and answer),
  ClusterEvaluation (ok / unknown per cluster, shown on the page).
- evaluation.py: one pass: read signals per cluster (one batch of PromQL), open and resolve alerts,
  create deliveries. Claims with unique constraints and conditional UPDATEs, so two workers
  never page twice.
- delivery.py: sending one delivery (Slack blocks or the generic JSON body), retries by the task.
- receivers.py: receiver services (create/update/delete, URL checks, encryption).
- tasks.py, api.py, views.py, management/commands/alerts_tick.py: front doors.
"""

"""Autoscaler.kind speaks fleet.autoscalers.ReplicaOwnerKind: a ScaledObject is "scaledobject"
(it was "keda"), the value a scale action's target_kind has always used."""

from django.db import migrations, models


def keda_to_scaledobject(apps, schema_editor):
    apps.get_model("fleet", "Autoscaler").objects.filter(kind="keda").update(kind="scaledobject")


def scaledobject_to_keda(apps, schema_editor):
    apps.get_model("fleet", "Autoscaler").objects.filter(kind="scaledobject").update(kind="keda")


class Migration(migrations.Migration):
    dependencies = [("fleet", "0008_deployment_pod_template")]

    operations = [
        migrations.AlterField(
            model_name="autoscaler",
            name="kind",
            field=models.CharField(
                choices=[("scaledobject", "KEDA ScaledObject"), ("hpa", "HorizontalPodAutoscaler")], max_length=12
            ),
        ),
        migrations.RunPython(keda_to_scaledobject, scaledobject_to_keda),
    ]

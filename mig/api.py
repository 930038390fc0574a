"""MIG API: POST mig-plans/ {cluster, node_pool} (operators) plans a pool and stores the plan
(201); GET mig-plans/ and mig-plans/{id}/ read them; POST mig-plans/{id}/apply/ {node, reason}
(operators) starts repartitioning that node (202 with the action); GET mig-applications/ and
mig-applications/{id}/ show each action and its steps; POST mig-applications/{id}/stop/ and
/resume/ (operators)."""

from __future__ import annotations

import yaml
from django.http import HttpResponse
from django.shortcuts import get_object_or_404
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.models import Role
from accounts.scope import request_token, scope_contains, scope_queryset, scope_require
from core.filters import refuse_unknown_parameters
from fleet.models import Cluster, ModelDeployment
from fleet.serving_manifests import kustomize_archive, serving_manifests
from mig import doctor, selectors, serializers
from mig.apply import mig_application_stop
from mig.doctor_selectors import finding_rows
from mig.models import MigApplication, MigPlan
from mig.services import finding_dismiss, mig_application_continue, mig_application_start, mig_plan_create
from scaling.services import Actor


class MigPlanViewSet(mixins.CreateModelMixin, viewsets.ReadOnlyModelViewSet):
    serializer_class = serializers.MigPlanSerializer
    queryset = MigPlan.objects.select_related("cluster", "node_pool").order_by("-created_at", "-id")
    write_role = Role.OPERATOR

    def create(self, request, *args, **kwargs):
        body = serializers.MigPlanRequestSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        scope_require(request, body.validated_data["node_pool"])  # a pool outside the token's clusters: 403
        plan = mig_plan_create(**body.validated_data, actor=Actor.of_request(request))
        plan = self.get_queryset().get(pk=plan.pk)
        return Response(serializers.MigPlanSerializer(plan).data, status=status.HTTP_201_CREATED)

    @action(detail=True, methods=["post"])
    def apply(self, request, pk=None):
        plan = self.get_object()
        body = serializers.MigApplyRequestSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        application = mig_application_start(
            plan=plan,
            node_name=body.validated_data["node"],
            reason=body.validated_data["reason"],
            actor=Actor.of_request(request),
        )
        application = _applications().get(pk=application.pk)
        return Response(serializers.MigApplicationSerializer(application).data, status=status.HTTP_202_ACCEPTED)


def _applications():
    return MigApplication.objects.select_related("cluster", "node_pool").order_by("-created_at", "-id")


class MigApplicationViewSet(viewsets.ReadOnlyModelViewSet):
    serializer_class = serializers.MigApplicationSerializer
    write_role = Role.OPERATOR

    def get_queryset(self):
        return _applications()

    @action(detail=True, methods=["post"])
    def stop(self, request, pk=None):
        application = self.get_object()
        mig_application_stop(application=application, actor=Actor.of_request(request))
        return Response(serializers.MigApplicationSerializer(_applications().get(pk=pk)).data)

    @action(detail=True, methods=["post"])
    def resume(self, request, pk=None):
        application = mig_application_continue(application=self.get_object(), actor=Actor.of_request(request))
        return Response(
            serializers.MigApplicationSerializer(_applications().get(pk=application.pk)).data,
            status=status.HTTP_202_ACCEPTED,
        )


class DeploymentManifestsView(APIView):
    """GET deployments/{id}/manifests/?autoscaler=keda|hpa: the best-practice manifests to serve the
    deployment's model, as one multi-document YAML stream (application/yaml); `&format=kustomize`
    gives them as a zip of a kustomize base (one file per object and kustomization.yaml)."""

    def perform_content_negotiation(self, request, force=False):
        # `format` names the download here, not a DRF renderer: never a 404 for `format=kustomize`.
        return super().perform_content_negotiation(request, force=True)

    def get(self, request, pk: int):
        deployments = ModelDeployment.objects.select_related("cluster").prefetch_related("pods__node", "autoscalers")
        deployment = get_object_or_404(scope_queryset(deployments, request_token(request)), pk=pk)
        autoscaler = request.query_params.get("autoscaler", "keda")
        if autoscaler not in ("keda", "hpa"):
            raise ValidationError({"autoscaler": [f"{autoscaler[:20]!r} is not keda or hpa"]})
        output = request.query_params.get("format", "yaml")
        if output not in ("yaml", "kustomize"):
            raise ValidationError({"format": [f"{output[:20]!r} is not yaml or kustomize"]})
        spec = selectors.serving_spec(deployment)
        documents = serving_manifests(spec, autoscaler=autoscaler)
        if output == "kustomize":
            response = HttpResponse(kustomize_archive(spec, documents), content_type="application/zip")
            response["Content-Disposition"] = f'attachment; filename="{documents[2]["metadata"]["name"]}-kustomize.zip"'
            return response
        body = yaml.safe_dump_all(documents, sort_keys=False, explicit_start=True)
        response = HttpResponse(body, content_type="application/yaml")
        response["Content-Disposition"] = f'attachment; filename="{documents[2]["metadata"]["name"]}.yaml"'
        return response


class FindingsView(APIView):
    """GET findings/?kind=&cluster=&dismissed=true: the doctor's findings over every cluster."""

    def get(self, request):
        refuse_unknown_parameters(request, ("kind", "cluster", "dismissed"))
        kind = request.query_params.get("kind") or None
        if kind is not None and kind not in doctor.KINDS:
            raise ValidationError({"kind": [f"{kind[:40]} is not one of {', '.join(doctor.KINDS)}"]})
        cluster = None
        if request.query_params.get("cluster"):
            name = request.query_params["cluster"]
            cluster = Cluster.objects.filter(name=name).first()
            if cluster is None:
                raise ValidationError({"cluster": [f"no cluster named {name[:63]}"]})
        dismissed = request.query_params.get("dismissed", "false").lower() in ("true", "1", "yes")
        token = request_token(request)
        rows = [
            r
            for r in finding_rows(cluster=cluster, kind=kind, dismissed=dismissed)
            if scope_contains(token, cluster=r.cluster, namespace=r.namespace)
        ]
        return Response({"count": len(rows), "results": [serializers.finding_body(r) for r in rows]})


class FindingDismissView(APIView):
    """POST findings/{deployment id}:{kind}/dismiss/ {"reason"} (operators): 201 with the dismissal."""

    write_role = Role.OPERATOR

    def post(self, request, finding_id: str):
        deployment_id, _, kind = finding_id.partition(":")
        if not deployment_id.isdigit():
            raise ValidationError({"id": [f"{finding_id[:60]} is not a finding id (deployment id:kind)"]})
        deployment = get_object_or_404(ModelDeployment.objects.select_related("cluster"), pk=int(deployment_id))
        scope_require(request, deployment)
        body = serializers.DismissRequestSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        dismissal = finding_dismiss(
            deployment=deployment, kind=kind, reason=body.validated_data["reason"], actor=Actor.of_request(request)
        )
        return Response(
            {
                "id": finding_id,
                "kind": dismissal.kind,
                "by": dismissal.actor_label,
                "reason": dismissal.reason,
                "at": dismissal.at.isoformat(),
            },
            status=status.HTTP_201_CREATED,
        )

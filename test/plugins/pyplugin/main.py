#!/usr/bin/python3
"""A Python detector used by Vigil's own tests, packed with
sdk/python/pack.py. It answers honestly with method "echo" (statistic = the
current sample's mean) and misbehaves on request through the "do" parameter:
raise a typed error, raise a plain exception, or answer NaN.

PYPLUGIN_FAULT in its environment breaks the plumbing the SDK provides, so
the conformance kit's tests can show its health and shutdown checks fail:
"unhealthy" answers NOT_SERVING to health checks, "no-controller" serves no
go-plugin controller (the agent must kill the plugin to stop it), "contract-2"
says contract_version 2 in Info while its handshake speaks 1 (the agent must
refuse it)."""

import math
import os
import threading
import time

import grpc

import vigil_plugin as vp
from vigil_plugin import _server

FAULT = os.environ.get("PYPLUGIN_FAULT", "")


def _unhealthy():
    hp = _server.health_pb2

    def check(request, context):
        return hp.HealthCheckResponse(status=hp.HealthCheckResponse.NOT_SERVING)

    return grpc.method_handlers_generic_handler("grpc.health.v1.Health", {
        "Check": grpc.unary_unary_rpc_method_handler(
            check, request_deserializer=hp.HealthCheckRequest.FromString,
            response_serializer=hp.HealthCheckResponse.SerializeToString)})


if FAULT == "no-controller":
    _server._controller_handlers = lambda stop: grpc.method_handlers_generic_handler("plugin.GRPCController", {})
elif FAULT == "unhealthy":
    _server._health_handlers = _unhealthy
elif FAULT == "contract-2":
    def _info_v2(self, request, context):
        return _server.plugin_pb2.InfoResponse(
            name=self.info.name, kind=self.kind, version=self.info.version,
            contract_version=2, capabilities=self.info.capabilities)
    _server._PluginServices.Info = _info_v2
elif FAULT:
    raise SystemExit("pyplugin: unknown PYPLUGIN_FAULT %r" % FAULT)


class Faulty(vp.Detector):
    def __init__(self):
        self.lock = threading.Lock()
        self.waiting = 0  # "wait" calls in progress
        self.waits_cut = 0  # "wait" calls that ended because the agent gave up

    def configure(self, config):
        # {"raise": CLASS} fails the Configure call itself with that class,
        # as a plugin that checks its key against its upstream may.
        if "raise" in config:
            raise vp.PluginError(config["raise"], "configure raised class %s" % config["raise"])
        return super().configure(config)

    def describe(self):
        return [vp.Method("echo", data_types=[vp.NUMERIC, vp.CATEGORICAL], default_threshold=1.0,
                          params=[vp.Param("do", "", "misbehave: rate_limited, overloaded, bug, nan, sleep; "
                                           "or look at the call: deadline, wait, waiting, waits_cut"),
                                  vp.Param("seconds", None, "how long sleep and wait take")])]

    def detect(self, req, ctx):
        do = req.params.get("do", "")
        if do == "deadline":  # statistic: the seconds left, -1 for no deadline
            left = ctx.time_remaining()
            return vp.Result(statistic=-1.0 if left is None else left, threshold=1.0, drifted=False,
                             details={"timeout_60": ctx.timeout(60), "cancelled": ctx.cancelled()})
        if do == "wait":  # wait up to seconds, or until the agent gives up
            with self.lock:
                self.waiting += 1
            cut = ctx.wait(req.params.get("seconds", 30.0))
            with self.lock:
                self.waiting -= 1
                self.waits_cut += cut
            return vp.Result(statistic=0.0, threshold=1.0, drifted=False)
        if do in ("waiting", "waits_cut"):
            with self.lock:
                n = self.waiting if do == "waiting" else self.waits_cut
            return vp.Result(statistic=float(n), threshold=1.0, drifted=False)
        if do == "rate_limited":
            raise vp.PluginError(vp.RATE_LIMITED, "slow down", retry_after=1.5)
        if do == "overloaded":
            raise vp.PluginError(vp.OVERLOADED, "too busy", retry_after=0.25)
        if do == "bug":
            return 1 / 0
        if do == "nan":
            return vp.Result(statistic=math.nan, threshold=1.0, drifted=False)
        if do == "sleep":
            time.sleep(req.params.get("seconds", 1.0))
        if req.method != "echo":
            raise vp.FieldError("method", "unknown method %r" % req.method)
        if req.data_type == vp.CATEGORICAL:
            stat = float(len(set(req.current)))
            return vp.Result(statistic=stat, threshold=1.0, drifted=stat > 1.0,
                             details={"categories": sorted(set(req.current))})
        vp.check_finite("current", req.current)
        stat = math.fsum(req.current) / len(req.current)
        thr = 1.0 if req.threshold is None else req.threshold
        return vp.Result(statistic=stat, threshold=thr, drifted=stat > thr,
                         details={"n_reference": len(req.reference), "n_current": len(req.current)})


if __name__ == "__main__":
    vp.serve_detector(vp.Info("py-test", "0.0.1-test"), Faulty())

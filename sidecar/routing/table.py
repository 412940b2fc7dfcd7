"""Route aliases -> the ordered deployments they try. Built once from a Policy snapshot."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from sidecar.config.routing import RouteConfig
from sidecar.config.schema import DeploymentConfig, Policy
from sidecar.core.errors import RouteNotFoundError
from sidecar.core.types import Price, Target
from sidecar.routing.retry import RetryPolicy


@dataclass(frozen=True, slots=True)
class Route:
    alias: str
    targets: tuple[Target, ...]
    config: RouteConfig
    deployments: tuple[DeploymentConfig, ...]  # the configuration of each target, same order
    retry: RetryPolicy


class RouteTable:
    def __init__(self, routes: Mapping[str, Route], default: str) -> None:
        self._routes = dict(routes)
        self.default = default

    @classmethod
    def from_policy(cls, policy: Policy) -> RouteTable:
        routes = {}
        for alias, route in policy.routes.items():
            targets = []
            for name in route.deployments:
                d = policy.deployments[name]
                price = Price(
                    d.price.input_per_million, d.price.output_per_million, d.price.cache_write_per_million
                )
                targets.append(Target(alias, name, d.provider, d.model, price))
            configs = tuple(policy.deployments[name] for name in route.deployments)
            retry = RetryPolicy(**route.retry.model_dump())
            routes[alias] = Route(alias, tuple(targets), route, configs, retry)
        return cls(routes, policy.default_route)

    def resolve(self, alias: str) -> Route:
        """The route for an alias; the empty alias is the default route."""
        route = self._routes.get(alias or self.default)
        if route is None:
            raise RouteNotFoundError(alias, list(self._routes))
        return route

    def routes(self) -> list[Route]:
        return [self._routes[alias] for alias in sorted(self._routes)]

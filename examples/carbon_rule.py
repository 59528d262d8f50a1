"""A user's rule controller, outside the aidc package: run it with
``aidc compare us-3site --controllers mpc,greedy,carbon_rule:CarbonRule`` from this folder.

Inference goes to the lowest-carbon feasible sites first, jobs start at release at the
lowest-carbon eligible site with room, and each battery charges while the price is below the
last day's median price and discharges above it.
"""

import numpy as np

from optimizer.control import idle_setpoints, last_values, nearest_first_shares, training_gpus_free
from optimizer.protocol import Controller, Observation, Setpoints


class CarbonRule(Controller):
    name = "carbon-rule"

    def __init__(self, margin: float = 0.0) -> None:
        self.margin = margin  # USD/MWh either side of the median with the battery idle

    def decide(self, observation: Observation) -> Setpoints:
        fleet, setpoints = self.fleet, idle_setpoints(self.fleet)
        carbon = last_values(observation.history["carbon"], fleet.site_names)
        free = training_gpus_free(fleet, observation.running)
        starts = []
        for job in sorted(observation.queued, key=lambda j: j.release_h):
            sites = [s for s in np.argsort(carbon, kind="stable") if free[s] >= job.gpus
                     and (job.sites is None or fleet.site_names[s] in job.sites)]
            if job.release_h <= observation.elapsed_h + 1e-9 and sites:
                starts.append((job.name, int(sites[0])))
                free[sites[0]] -= job.gpus
        setpoints.job_starts = tuple(starts)
        demand = last_values(observation.history["demand"], fleet.class_names)
        order = np.broadcast_to(carbon, (fleet.n_classes, fleet.n_sites))
        setpoints.routing_shares = nearest_first_shares(fleet, demand, free, site_order=order)
        day = observation.history["import_price"].to_frame()[list(fleet.site_names)]
        prices = day.to_numpy()[-round(24 / observation.interval_h):]
        if len(prices):
            median, price = np.median(prices, axis=0), prices[-1]
            setpoints.charge_mw = np.where(price < median - self.margin, fleet.battery_charge_mw, 0.0)
            setpoints.discharge_mw = np.where(price > median + self.margin, fleet.battery_discharge_mw, 0.0)
        return setpoints

    def config(self) -> dict[str, object]:
        return {"name": self.name, "margin_usd_per_mwh": self.margin}

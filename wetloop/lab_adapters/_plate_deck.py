"""The PyLabRobot deck behind `PlateLab`: what is on it, how a well is dosed, and how errors read.

    STARlet deck (PyLabRobot's simulated backends: nothing moves, every call is checked and recorded)
    ├── rails 1   trough carrier: a 200 mL trough of diluent and one of stock per dose variable
    ├── rails 8   plate carrier: the assay plate (Corning 96-well, 360 µL), a new one per plate run
    ├── rails 15  tip carrier: racks of Hamilton tips, refilled per plate run
    └── trash
    plate reader (off deck; the plate is carried over by hand, as beside an OT-2 without a gripper)

A well is one experiment. For every dose variable v it gets `value / upper * max_stock_volume_ul` of
v's stock, and diluent makes it up to `total_volume_ul`: one fresh tip per reagent (pick up, aspirate
from the trough, dispense into the well, drop into the trash). PyLabRobot's tip and volume tracking
are switched on, so it raises on a missing or doubled tip and on a volume that does not fit; those
errors come back as `TipError` / `VolumeError` naming the experiment, its well and the step.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator
from pylabrobot.liquid_handling import LiquidHandler
from pylabrobot.liquid_handling.backends import SerializingBackend
from pylabrobot.liquid_handling.errors import ChannelizedError
from pylabrobot.plate_reading import PlateReader
from pylabrobot.plate_reading.backend import PlateReaderBackend
from pylabrobot.resources import (
    PLT_CAR_L5AC_A00,
    TIP_CAR_480_A00,
    Container,
    Plate,
    TipRack,
    Trough_CAR_4R200_A00,
    Well,
    cor_96_wellplate_360uL_Fb,
    hamilton_1_trough_200mL_Vb,
    hamilton_96_tiprack_10uL,
    hamilton_96_tiprack_50uL,
    hamilton_96_tiprack_300uL,
    hamilton_96_tiprack_1000uL,
    set_tip_tracking,
    set_volume_tracking,
)
from pylabrobot.resources.errors import HasTipError, NoTipError, TooLittleLiquidError, TooLittleVolumeError
from pylabrobot.resources.hamilton import STARLetDeck

from wetloop.campaign import CampaignSpec, Intervention

from .errors import LabError, LiquidHandlingError, TipError, VolumeError

__all__ = ["PlateOptions", "Deck", "WellJob", "DILUENT", "WELLS_PER_PLATE", "dose_volumes", "check_doseable"]

DILUENT = "diluent"
WELLS_PER_PLATE = 96
TROUGH_SLOTS = 4  # the trough carrier's positions: the diluent and up to three stocks
_TIP_RACKS = {
    10: hamilton_96_tiprack_10uL,
    50: hamilton_96_tiprack_50uL,
    300: hamilton_96_tiprack_300uL,
    1000: hamilton_96_tiprack_1000uL,
}


class PlateOptions(BaseModel):
    """How `PlateLab` doses a plate (`spec.lab.options` of the `pylabrobot` adapter); volumes in µL."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    total_volume_ul: float = Field(250.0, gt=0, description="every well is made up to this volume with diluent")
    max_stock_volume_ul: float = Field(100.0, gt=0, description="stock volume at a variable's upper limit")
    stock_volume_ul: float = Field(50_000.0, gt=0, le=200_000, description="loaded into each 200 mL trough for each plate")
    tip_volume_ul: Literal[10, 50, 300, 1000] = Field(300, description="Hamilton tip size (a 300 µL tip holds 400 µL)")
    tip_racks: int | None = Field(None, ge=1, le=5, description="racks on the tip carrier (default: enough for a full plate)")
    tips: int | None = Field(None, ge=0, description="tips loaded per plate (default: every spot of the racks)")
    wavelength_nm: int = Field(450, gt=0, description="the reader's nominal wavelength")

    @model_validator(mode="after")
    def _tips_fit(self) -> PlateOptions:
        if self.tips is not None and self.tip_racks is not None and self.tips > 96 * self.tip_racks:
            raise ValueError(f"tips ({self.tips}) do not fit on {self.tip_racks} rack(s) of 96")
        return self


def check_doseable(spec: CampaignSpec, options: PlateOptions) -> None:
    """Raise `LabError` unless every variable can be dosed from a stock and the deck holds the troughs."""
    problems = [f"{v.name} is categorical" for v in spec.interventions if v.kind != "continuous"]
    problems += [f"{v.name} can be negative (lower {v.lower:g})" for v in spec.interventions if (v.lower or 0) < 0]
    n = len(spec.interventions)
    if n + 1 > TROUGH_SLOTS:
        problems.append(f"{n} variables need {n + 1} troughs; the carrier holds {TROUGH_SLOTS}")
    if n * options.max_stock_volume_ul > options.total_volume_ul:
        problems.append(
            f"total_volume_ul {options.total_volume_ul:g} is below {n} x max_stock_volume_ul {options.max_stock_volume_ul:g}"
        )
    if problems:
        raise LabError(
            "the pylabrobot adapter doses each continuous, non-negative variable from a stock trough, plus a diluent: "
            + "; ".join(problems)
            + ". Change the spec or the lab options (total_volume_ul, max_stock_volume_ul)."
        )


def dose_volumes(spec: CampaignSpec, options: PlateOptions, x: Intervention) -> dict[str, float]:
    """µL of each reagent for one well: the diluent first (as a plate is usually prepared), then each stock."""
    stocks = {v.name: x.number(v.name) / float(v.upper or 1.0) * options.max_stock_volume_ul for v in spec.interventions}
    return {DILUENT: options.total_volume_ul - sum(stocks.values()), **stocks}


@dataclass
class WellJob:
    """One experiment's well: what goes in, and the steps that put it there (for the record)."""

    experiment_key: str
    well: Well
    volumes: dict[str, float]
    steps: list[dict[str, Any]] = field(default_factory=list)

    @property
    def well_id(self) -> str:
        return self.well.get_identifier()


class _RecordingBackend(SerializingBackend):
    """PyLabRobot's serializing liquid-handler backend, recording each command instead of sending it:
    a simulated robot that keeps the protocol it ran (the chatterbox one prints to stdout instead)."""

    def __init__(self) -> None:
        super().__init__(num_channels=8)
        self.commands: list[tuple[str, dict[str, Any] | None]] = []

    async def send_command(self, command: str, data: dict[str, Any] | None = None) -> dict[str, Any] | None:
        self.commands.append((command, data))
        return None


class _WorldReaderBackend(PlateReaderBackend):
    """A simulated plate reader whose wells read what the world measured for them (`values`)."""

    def __init__(self) -> None:
        self.values: dict[str, float] = {}

    async def setup(self) -> None: ...
    async def stop(self) -> None: ...
    async def open(self) -> None: ...
    async def close(self, plate: Plate | None) -> None: ...

    async def read_absorbance(self, plate: Plate, wells: list[Well], wavelength: int) -> list[dict[str, Any]]:
        data: list[list[float | None]] = [[None] * plate.num_items_x for _ in range(plate.num_items_y)]
        for well in wells:
            data[well.get_row()][well.get_column()] = self.values.get(well.name)
        return [{"wavelength": wavelength, "time": time.time(), "temperature": math.nan, "data": data}]

    async def read_luminescence(self, *args: Any, **kwargs: Any) -> list[dict[str, Any]]:
        raise NotImplementedError("this simulated reader reads absorbance only")

    async def read_fluorescence(self, *args: Any, **kwargs: Any) -> list[dict[str, Any]]:
        raise NotImplementedError("this simulated reader reads absorbance only")

    async def capture(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError("this simulated reader takes no images")


class Deck:
    """The liquid handler, its deck and the plate reader, built once and reloaded for every plate."""

    def __init__(self, spec: CampaignSpec, options: PlateOptions) -> None:
        self.spec, self.options = spec, options
        self.backend = _RecordingBackend()
        self.lh = LiquidHandler(backend=self.backend, deck=STARLetDeck())
        self.reader = PlateReader(name="reader", size_x=130, size_y=90, size_z=60, backend=_WorldReaderBackend())
        self.troughs = self._troughs()
        self.tip_racks = self._tip_racks()
        self.tip_max_ul = float(self.tip_racks[0].get_item(0).make_tip().maximal_volume)
        self.carrier = PLT_CAR_L5AC_A00("plate_carrier")
        self.lh.deck.assign_child_resource(self.carrier, rails=8)
        self._next_tip = 0

    def _troughs(self) -> dict[str, Container]:
        carrier = Trough_CAR_4R200_A00("trough_carrier")
        troughs = {}
        for i, reagent in enumerate([DILUENT, *self.spec.variable_names]):
            carrier[i] = troughs[reagent] = hamilton_1_trough_200mL_Vb(f"trough_{reagent}")
        self.lh.deck.assign_child_resource(carrier, rails=1)
        return troughs

    def _tip_racks(self) -> list[TipRack]:
        per_plate = WELLS_PER_PLATE * (len(self.spec.interventions) + 1)
        n = self.options.tip_racks or min(5, math.ceil(per_plate / 96))
        carrier, racks = TIP_CAR_480_A00("tip_carrier"), []
        for i in range(n):
            carrier[i] = rack = _TIP_RACKS[self.options.tip_volume_ul](f"tips_{i}")
            racks.append(rack)
        self.lh.deck.assign_child_resource(carrier, rails=15)
        return racks

    async def setup(self) -> None:
        set_tip_tracking(True)  # process-wide in PyLabRobot: without them it raises no tip or volume errors
        set_volume_tracking(True)
        await self.lh.setup()
        await self.reader.setup()

    def load(self, plate_no: int) -> Plate:
        """Ready the deck for a plate: tips refilled, troughs filled, a new plate on the carrier."""
        spots = [spot for rack in self.tip_racks for spot in rack.get_all_items()]
        loaded = len(spots) if self.options.tips is None else self.options.tips
        for rack in self.tip_racks:
            rack.set_tip_state([i < loaded for i in range(len(rack.get_all_items()))])
            loaded -= len(rack.get_all_items())
        for trough in self.troughs.values():
            trough.tracker.set_volume(self.options.stock_volume_ul)
        if self.reader.children:
            self.reader.get_plate().unassign()  # the last plate leaves the reader for the bin
        self.carrier[0] = plate = cor_96_wellplate_360uL_Fb(f"plate_{plate_no}")
        self._next_tip = 0
        return plate

    @property
    def tips_loaded(self) -> int:
        return sum(spot.has_tip() for rack in self.tip_racks for spot in rack.get_all_items())

    # -- one well ---------------------------------------------------------------------------------
    async def prepare(self, job: WellJob) -> None:
        """Dose one well, reagent by reagent; raises `TipError` / `VolumeError` naming the experiment."""
        for reagent, volume in job.volumes.items():
            if volume > 0:
                await self._transfer(job, reagent, volume)

    async def _transfer(self, job: WellJob, reagent: str, volume: float) -> None:
        spot = self._tip_spot()
        trough = self.troughs[reagent]
        steps = (
            ("pick up tip", spot.name, lambda: self.lh.pick_up_tips([spot])),
            ("aspirate", trough.name, lambda: self.lh.aspirate([trough], vols=[volume])),
            ("dispense", job.well.name, lambda: self.lh.dispense([job.well], vols=[volume])),
            ("drop tip", "trash", lambda: self.lh.discard_tips()),
        )
        for step, where, call in steps:
            try:
                await call()
            except (ChannelizedError, HasTipError, NoTipError, TooLittleLiquidError, TooLittleVolumeError) as exc:
                await self._recover([trough, job.well])
                raise self._translate(job, step, reagent, volume, where, exc) from exc
            job.steps.append({"step": step, "at": where, "reagent": reagent, "volume_ul": volume})

    def _tip_spot(self) -> Any:
        """The next tip spot in rack order: a robot's tip pointer, which does not look before it reaches."""
        spots = [spot for rack in self.tip_racks for spot in rack.get_all_items()]
        spot = spots[min(self._next_tip, len(spots) - 1)]  # past the end it keeps trying the last, empty, spot
        self._next_tip += 1
        return spot

    async def _recover(self, touched: list[Container]) -> None:
        """Undo half-done tracker updates and clear the head, so the next well starts clean."""
        for container in touched:
            container.tracker.rollback()
        for channel in self.lh.head.values():
            channel.rollback()
            if channel.has_tip:
                channel.get_tip().tracker.rollback()
        if any(channel.has_tip for channel in self.lh.head.values()):
            await self.lh.discard_tips(allow_nonzero_volume=True)

    def _translate(self, job: WellJob, step: str, reagent: str, volume: float, where: str, exc: Exception) -> LiquidHandlingError:
        """PyLabRobot's error (a channel's own one inside a ChannelizedError) as a TipError / VolumeError."""
        cause = next(iter(exc.errors.values())) if isinstance(exc, ChannelizedError) and exc.errors else exc
        kind, hint = _hint(self, step, reagent, volume, where, job, cause)
        return kind(job.experiment_key, job.well_id, step, cause, hint)

    # -- reading ----------------------------------------------------------------------------------
    async def read(self, plate: Plate, values: dict[str, float]) -> dict[str, float | None]:
        """Carry the plate to the reader and read it; the reader reports `values` (well name -> value)."""
        plate.unassign()
        self.reader.assign_child_resource(plate)
        self.reader.backend.values = values
        result = await self.reader.read_absorbance(wavelength=self.options.wavelength_nm, use_new_return_type=True)
        data = result[0]["data"]
        return {well.name: data[well.get_row()][well.get_column()] for well in plate.get_all_items()}

    async def stop(self) -> None:
        await self.lh.stop()
        await self.reader.stop()


def _hint(
    deck: Deck, step: str, reagent: str, volume: float, where: str, job: WellJob, cause: BaseException
) -> tuple[type[LiquidHandlingError], str]:
    """Which error, and what to do about it, for a PyLabRobot error at a step."""
    if isinstance(cause, HasTipError):
        return TipError, "the channel already held a tip (left on the head before this step); it was discarded, later wells go on"
    if isinstance(cause, NoTipError) and step == "pick up tip":
        loaded = "every spot" if deck.options.tips is None else f"{deck.options.tips} tips"
        return TipError, (
            f"no tip at {where}: the deck ran out of tips (loaded with {loaded} of {len(deck.tip_racks)} rack(s), "
            f"{len(job.volumes)} tips per well); raise the lab options tips / tip_racks, or submit fewer experiments per plate"
        )
    if isinstance(cause, NoTipError):
        return TipError, f"the channel held no tip to {step} with; the head was reset, later wells go on"
    if isinstance(cause, TooLittleLiquidError):
        return (
            VolumeError,
            f"{reagent} trough {where} holds less than the {volume:g} µL to aspirate; raise the lab option stock_volume_ul",
        )
    if step == "aspirate":
        return VolumeError, (
            f"{volume:g} µL of {reagent} does not fit a {deck.options.tip_volume_ul} µL tip (it holds {deck.tip_max_ul:g} µL); "
            "choose larger tips (tip_volume_ul) or lower max_stock_volume_ul / total_volume_ul"
        )
    return VolumeError, (
        f"{volume:g} µL of {reagent} does not fit in well {job.well_id} (it holds {job.well.max_volume:g} µL); "
        "lower the lab option total_volume_ul"
    )

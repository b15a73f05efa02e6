"""Write the example PDFs in examples/ (fictional content, one topic per page).

Deterministic: a fixed creation date, so running it again gives identical bytes.

    .venv/bin/python scripts/make_examples.py [--out examples]
"""

from __future__ import annotations

import argparse
import datetime as dt
from pathlib import Path

from fpdf import FPDF

FIXED_DATE = dt.datetime(2026, 1, 15, 9, 0, tzinfo=dt.UTC)

ANNUAL_REPORT = (
    "Bramblecote Instruments Annual Report 2025",
    [
        (
            "Bramblecote Instruments Ltd. - Annual Report 2025",
            "Bramblecote Instruments is a fictional maker of flow meters and pressure sensors "
            "for water utilities and food processing plants. This report covers the financial "
            "year from 1 January to 31 December 2025.\n\n"
            "At the end of 2025 the company employed 412 people, up from 371 a year earlier. "
            "Most of the new hires joined the engineering and field-service teams. The company "
            "operates two plants, in Tilburg and in Brno, and a sales office in Lyon.",
        ),
        (
            "Revenue",
            "Revenue in 2025 was EUR 48.6 million, an increase of 12 percent over 2024, when "
            "revenue was EUR 43.4 million. Growth came mainly from water utilities, which "
            "replaced ageing mechanical meters under new leakage regulations.\n\n"
            "Revenue by region in 2025: Western Europe EUR 29.1 million, Central and Eastern "
            "Europe EUR 12.8 million, rest of the world EUR 6.7 million. Service contracts "
            "made up 18 percent of revenue, against 15 percent the year before.",
        ),
        (
            "Costs and profit",
            "Operating profit for 2025 was EUR 6.1 million, an operating margin of "
            "12.6 percent (2024: EUR 4.9 million, 11.3 percent). Net profit after tax was "
            "EUR 4.4 million.\n\n"
            "Spending on research and development rose to EUR 5.2 million, or 10.7 percent of "
            "revenue. Material costs rose by 6 percent because of higher prices for stainless "
            "steel and electronic components; a second supplier for sensor chips was signed "
            "in May to reduce the dependency on a single source.",
        ),
        (
            "Products",
            "The TR-9 ultrasonic flow meter, launched in March 2025, was the most successful "
            "product launch in the company's history: 18,300 units shipped in its first ten "
            "months. The TR-9 has no moving parts and a turndown ratio of 100 to 1.\n\n"
            "The older TR-5 mechanical meter will be discontinued at the end of 2026; spare "
            "parts remain available until 2033. The PS-40 pressure sensor received a firmware "
            "update adding remote diagnostics over LoRaWAN.",
        ),
        (
            "Sustainability",
            "Energy use per unit produced fell by 9 percent in 2025. 61 percent of the "
            "electricity used by both plants came from renewable sources, including a 1.2 "
            "megawatt solar installation on the roof of the Brno plant that went live in "
            "June.\n\n"
            "Packaging is now 94 percent recycled cardboard; foam inserts were replaced by "
            "moulded pulp. Returned meters are refurbished or dismantled, and 87 percent of "
            "their weight was recovered as material in 2025.",
        ),
        (
            "Outlook for 2026",
            "For 2026 the board expects revenue between EUR 52 million and EUR 54 million. A "
            "third plant, in Porto, is scheduled to open in the third quarter of 2026 and will "
            "assemble the TR-9 for customers in Southern Europe.\n\n"
            "The board proposes a dividend of EUR 0.85 per share for 2025, up from EUR 0.70. "
            "The annual general meeting takes place on 14 May 2026.",
        ),
    ],
)

MAINTENANCE_GUIDE = (
    "Harbor 300 Dehumidifier Maintenance Guide",
    [
        (
            "Harbor 300 industrial dehumidifier - Safety and schedule",
            "This guide is for technicians servicing the fictional Harbor 300 industrial "
            "dehumidifier. Always disconnect the unit from mains power and wait 5 minutes for "
            "the compressor to depressurise before opening any panel.\n\n"
            "Maintenance intervals: clean the air filter every 250 operating hours; inspect the "
            "condensate pump every 500 hours; clean the evaporator and condenser coils every "
            "2,000 hours or once a year, whichever comes first.",
        ),
        (
            "Replacing the air filter",
            "The air filter sits behind the front grille. Release the two quarter-turn "
            "fasteners, lift the grille off and slide the filter out upwards. Use only the "
            "HF-12 pleated filter (class G4). A clogged filter reduces airflow and makes the "
            "coils freeze.\n\n"
            "After fitting a new filter, hold the RESET key for 3 seconds to clear the filter "
            "reminder. The hour counter for the filter restarts at zero.",
        ),
        (
            "Cleaning the coils and the condensate pump",
            "Spray the coils with a non-acid coil cleaner and rinse with low-pressure water, "
            "never a pressure washer, which bends the fins. Let the coils dry for 30 minutes "
            "before reconnecting power.\n\n"
            "The condensate pump is rated for a lift of 4 metres. Remove the pump reservoir "
            "cover, wipe out any slime and check that the float switch moves freely. Replace "
            "the outlet hose if it is kinked or longer than 20 metres.",
        ),
        (
            "Error codes",
            "E1: room humidity sensor fault - check the sensor cable at connector J4.\n"
            "E2: coil temperature sensor fault - replace sensor part number TS-07.\n"
            "E3: condensate pump blocked or float stuck - clean the pump reservoir.\n"
            "E4: high refrigerant pressure - clean the condenser coil and check the fan.\n"
            "E5: low refrigerant pressure - refrigerant leak suspected, call a certified "
            "refrigeration engineer.\n"
            "E6: defrost took longer than 45 minutes - check the hot-gas valve.\n"
            "E7: supply voltage out of range (below 200 V or above 250 V) - check the supply.",
        ),
    ],
)

DOCUMENTS = {
    "annual-report-2025.pdf": ANNUAL_REPORT,
    "harbor-300-maintenance.pdf": MAINTENANCE_GUIDE,
}


def render(title: str, pages: list[tuple[str, str]]) -> bytes:
    pdf = FPDF(format="A4")
    pdf.set_creation_date(FIXED_DATE)
    pdf.set_title(title)
    pdf.set_author("Example corpus")
    pdf.set_auto_page_break(auto=True, margin=20)
    for number, (heading, body) in enumerate(pages, start=1):
        pdf.add_page()
        pdf.set_font("Helvetica", style="B", size=16)
        pdf.multi_cell(0, 9, heading)
        pdf.ln(4)
        pdf.set_font("Helvetica", size=11)
        pdf.multi_cell(0, 6, body)
        pdf.set_auto_page_break(auto=False)
        pdf.set_y(-15)
        pdf.set_font("Helvetica", size=9)
        pdf.cell(0, 6, f"{title} - page {number} of {len(pages)}", align="C")
        pdf.set_auto_page_break(auto=True, margin=20)
    return bytes(pdf.output())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).parent.parent / "examples")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    for name, (title, pages) in DOCUMENTS.items():
        path = args.out / name
        path.write_bytes(render(title, pages))
        print(f"wrote {path} ({len(pages)} pages)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

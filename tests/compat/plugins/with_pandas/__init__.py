"""pandas: CSV through StringIO, groupby, tz-aware datetimes across a DST change."""
__deps_dir__ = "deps"

import plugbox

CSV = """city,year,sales
Lyon,2023,10
Lyon,2024,15
Nantes,2023,7
Nantes,2024,9
Lyon,2024,5
"""


@plugbox.export
def run():
    import io
    import pandas as pd
    df = pd.read_csv(io.StringIO(CSV))
    by_city = df.groupby("city")["sales"].sum().to_dict()
    by_both = df.groupby(["city", "year"])["sales"].sum()
    out = io.StringIO()
    by_both.reset_index().to_csv(out, index=False)
    stamps = pd.date_range("2024-03-31 00:00", periods=3, freq="H", tz="UTC").tz_convert("Europe/Paris")
    return {
        "by_city": {k: int(v) for k, v in by_city.items()},
        "csv": out.getvalue(),
        "paris": [s.isoformat() for s in stamps],
        "mean": float(df["sales"].mean()),
    }

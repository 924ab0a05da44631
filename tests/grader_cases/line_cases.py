"""Golden cases that each break one line of an exercise's checklist, made from its reference solution.

    .venv/bin/python tests/grader_cases/line_cases.py    (writes tests/grader_cases/<ex>/<case>/)

Each case is the solution with a few lines replaced; its expected.json says which checks fail
(and that no other graded check does: "only") and what their message says.
"""

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
START = 'start_date=pendulum.datetime(2023, 10, 1, tz="UTC")'

# What shows that the rest of a file works, where an exercise has no run.tasks_succeeded.
RUNS_PASS = {"ex10_sensor_trigger_rules": ("run.file_arrives", "run.file_missing")}

def case(ex, name, doc, subs, fails, fragments, passes=None, status="fail"):
    passes = passes or RUNS_PASS.get(ex, ("run.tasks_succeeded",))
    src = (ROOT / "solutions" / ex / "dag.py").read_text()
    end = src.index('"""', 3) + 3
    src = f'"""{doc}"""' + src[end:]
    for old, new in subs:
        if old not in src:
            sys.exit(f"{ex}/{name}: {old!r} not in the solution")
        src = src.replace(old, new, 1)
    d = ROOT / "tests" / "grader_cases" / ex / name
    d.mkdir(parents=True, exist_ok=True)
    (d / "dag.py").write_text(src)
    checks = {c: "pass" for c in passes}
    checks.update({c: "fail" for c in fails})
    expected = {"status": status, "only": True, "checks": checks, "messages": {fails[0]: fragments}}
    (d / "expected.json").write_text(json.dumps(expected, indent=2) + "\n")

def start(ex):
    case(ex, "start_date_a_day_late", "Wrong (one checklist line): start_date is 2 October, not 1 October.",
         [(START, 'start_date=pendulum.datetime(2023, 10, 2, tz="UTC")')], ["schedule.start_date"],
         ["start_date is 2023-10-02 00:00", "pendulum.datetime(2023, 10, 1, tz=\"UTC\")"])

def catchup(ex):
    case(ex, "catchup_true",
         "Wrong (one checklist line): catchup=True would backfill every day since the start.",
         [("catchup=False", "catchup=True")], ["schedule.catchup"], ["catchup is True; set `catchup=False`"])

def dag_id(ex, old):
    case(ex, "dag_id_with_suffix", f"Wrong (one checklist line): dag_id {old}_dag instead of {old}.",
         [(f'dag_id="{old}"', f'dag_id="{old}_dag"')], ["import.dag_id"],
         [f"Your DAG has dag_id `{old}_dag`; the exercise asks for `{old}`"])

def schedule(ex, old, new):
    case(ex, "schedule_hourly" if new == "@hourly" else "schedule_another_hour",
         f"Wrong (one checklist line): schedule={new!r} instead of {old!r}.",
         [(f'schedule="{old}"', f'schedule="{new}"')], ["schedule.timing"], ["Your schedule runs"])

# ex01
start("ex01_daily_etl")
catchup("ex01_daily_etl")
case("ex01_daily_etl", "extract_filters_adults",
     "Wrong (one checklist line): extract already drops the minors, so it does not return every row.",
     [('            for row in csv.DictReader(f)\n        ]',
       '            for row in csv.DictReader(f)\n            if int(row["age"]) > 18\n        ]')],
     ["run.extract"], ["On the grading data, `extract` returned", "users.csv holds"])
case("ex01_daily_etl", "subject_etl_done",
     "Wrong (one checklist line): the email's subject says \"ETL done\", not \"ETL Success\".",
     [('subject="ETL Success', 'subject="ETL done')], ["run.email"], ["it must contain 'ETL Success'"])
# ex02
schedule("ex02_parallel_regions", "@daily", "@hourly")
start("ex02_parallel_regions")
catchup("ex02_parallel_regions")
case("ex02_parallel_regions", "extract_returns_a_count",
     "Wrong (one checklist line): extract_all returns a count; each region reads the file itself.",
     [('''        with SALES_CSV.open(newline="") as f:
            return [
                {"order_id": int(row["order_id"]), "region": row["region"], "amount": float(row["amount"])}
                for row in csv.DictReader(f)
            ]''', '''        with SALES_CSV.open(newline="") as f:
            return len(list(csv.DictReader(f)))'''),
      ('''        amounts = [sale["amount"] for sale in sales if sale["region"] == region]''',
       '''        with SALES_CSV.open(newline="") as f:
            rows = list(csv.DictReader(f))
        amounts = [float(r["amount"]) for r in rows if r["region"] == region]'''),
      ("def process_region(sales: list[dict], region: str)", "def process_region(sales: int, region: str)"),
      ("def extract_all() -> list[dict]:", "def extract_all() -> int:")],
     ["run.extract"], ["`extract_all` returned int", "return the rows"])
case("ex02_parallel_regions", "regions_other_keys",
     "Wrong (one checklist line): each region returns count/total; merge_results renames them.",
     [('        return {"region": region, "orders": len(amounts), "revenue": round(sum(amounts), 2)}',
       '        return {"region": region, "count": len(amounts), "total": round(sum(amounts), 2)}'),
      ('        regions = {"us": us, "eu": eu, "asia": asia}',
       '        regions = {name: {"region": r["region"], "orders": r["count"], "revenue": r["total"]}\n'
       '                   for name, r in {"us": us, "eu": eu, "asia": asia}.items()}')],
     ["run.regions"], ["process_us's result['orders'] is None, expected", "process_eu's result['revenue']"],
     passes=("run.tasks_succeeded", "run.output"))
# ex03
dag_id("ex03_first_dag", "hello_world")
schedule("ex03_first_dag", "@daily", "@hourly")
start("ex03_first_dag")
case("ex03_first_dag", "tags_and_description_dropped",
     "Wrong (one checklist line): the starter's description and tags were deleted.",
     [('    description="My first Airflow DAG",\n', ''), ('    tags=["example"],\n', '')],
     ["settings.tags"],
     ["its tags are []", "its description is None", "Keep `description='My first Airflow DAG'`"])
# ex04
dag_id("ex04_operators", "common_operators")
schedule("ex04_operators", "0 2 * * *", "0 3 * * *")
start("ex04_operators")
catchup("ex04_operators")
case("ex04_operators", "summary_sent_by_python",
     "Wrong (one checklist line): send_summary is a PythonOperator that sends the mail with smtplib.",
     [('''    send_summary = EmailOperator(
        task_id="send_summary",
        to="team@company.com",
        subject="Revenue for {{ ds }}: {{ ti.xcom_pull(task_ids='total_revenue') }}",
        html_content="<p>Total revenue on {{ ds }}: "
        "<b>{{ ti.xcom_pull(task_ids='total_revenue') }}</b></p>",''',
       '''    send_summary = PythonOperator(
        task_id="send_summary",
        python_callable=mail_summary,
        op_kwargs={"subject": "Revenue for {{ ds }}: {{ ti.xcom_pull(task_ids='total_revenue') }}"},'''),
      ("from airflow.providers.smtp.operators.smtp import EmailOperator\n", ""),
      ("ORDERS_CSV = Path(__file__)", '''def mail_summary(subject: str) -> None:
    import smtplib
    from email.message import EmailMessage

    from airflow.sdk import BaseHook

    conn = BaseHook.get_connection("smtp_default")
    message = EmailMessage()
    message["From"], message["To"], message["Subject"] = "airflow@example.com", "team@company.com", subject
    message.set_content(subject)
    with smtplib.SMTP(conn.host, conn.port) as smtp:
        smtp.send_message(message)


ORDERS_CSV = Path(__file__)''')],
     ["structure.operators"], ["`send_summary` is a PythonOperator, the exercise asks for an EmailOperator"],
     passes=("run.tasks_succeeded", "run.email"))
# ex05
start("ex05_diamond")
catchup("ex05_diamond")
case("ex05_diamond", "extract_returns_the_path",
     "Wrong (one checklist line): extract returns the file's path; each transform reads the file itself.",
     [('''def extract() -> list[dict]:
    """Read every visit, with the numbers as integers."""
    with VISITS_CSV.open(newline="") as f:
        return [''', '''def extract() -> str:
    """Say where the visits are."""
    return str(VISITS_CSV)


def _visits(ti) -> list[dict]:
    with open(ti.xcom_pull(task_ids="extract"), newline="") as f:
        return ['''),
      ('''    visits = ti.xcom_pull(task_ids="extract")
    return dict(''', '''    visits = _visits(ti)
    return dict('''),
      ('''    visits = ti.xcom_pull(task_ids="extract")
    return round(''', '''    visits = _visits(ti)
    return round(''')],
     ["run.extract"], ["`extract` returned str", "return the rows of visits.csv as a list"])
case("ex05_diamond", "load_keyerror",
     "Wrong (one checklist line): load reads a key merge does not return, and fails.",
     [('''    print(f"{summary['total_visits']} visits''', '''    print(f"{summary['visits']} visits''')],
     ["run.tasks_succeeded"], ["`load` failed: KeyError: 'visits'"], passes=("structure.edges",))
# ex06
catchup("ex06_xcom_etl")
case("ex06_xcom_etl", "extra_edge_extract_load",
     "Wrong (one checklist line): load also waits for extract directly, an arrow not asked for.",
     [("extract_task >> transform_task >> load_task",
       "extract_task >> transform_task >> load_task\n    extract_task >> load_task")],
     ["structure.edges"], ["unexpected extract >> load"])
case("ex06_xcom_etl", "extract_returns_text",
     "Wrong (one checklist line): extract returns the file's text; transform parses it.",
     [('    return json.loads(USERS_JSON.read_text(encoding="utf-8"))',
       '    return USERS_JSON.read_text(encoding="utf-8")'),
      ('    users = ti.xcom_pull(task_ids="extract")\n',
       '    users = json.loads(ti.xcom_pull(task_ids="extract"))\n')],
     ["run.extract"], ["`extract` returned str"])
# ex07
dag_id("ex07_business_hours", "frequent_pipeline")
start("ex07_business_hours")
catchup("ex07_business_hours")
# ex08
case("ex08_fix_broken_dag", "extract_returns_text",
     "Wrong (one checklist line): extract returns the file's text; transform parses it.",
     [('''    with EVENTS_CSV.open(newline="") as f:
        return list(csv.DictReader(f))''', '''    return EVENTS_CSV.read_text()'''),
      ('''    events = context["ti"].xcom_pull(task_ids="extract")''',
       '''    events = csv.DictReader(context["ti"].xcom_pull(task_ids="extract").splitlines())''')],
     ["run.extract"], ["`extract` returned str"])
case("ex08_fix_broken_dag", "transform_most_common",
     "Wrong (one checklist line): transform returns (action, count) pairs; report turns them into a dict.",
     [('''    return dict(Counter(event["action"] for event in events))''',
       '''    return Counter(event["action"] for event in events).most_common()'''),
      ('''    counts = context["ti"].xcom_pull(task_ids="transform")''',
       '''    counts = dict(context["ti"].xcom_pull(task_ids="transform"))''')],
     ["run.transform"], ["`transform` returned list", "expected the number of events per action"],
     passes=("run.tasks_succeeded", "run.output"))
# ex09
start("ex09_assets")
catchup("ex09_assets")
schedule("ex09_assets", "@daily", "@hourly")
case("ex09_assets", "no_outlet",
     "Wrong (one checklist line): publish declares no outlet, so no asset event, so no consumer run.",
     [("    @task(outlets=[ORDERS_CLEAN])\n", "    @task\n")],
     ["assets.outlet", "assets.triggered"],
     ["No task of `orders_producer` declares an outlet", "add `outlets=[ORDERS_CLEAN]` to `publish`"])
case("ex09_assets", "consumer_on_a_cron",
     "Wrong (one checklist line): the consumer runs every morning instead of when the orders are published.",
     [("    schedule=[ORDERS_CLEAN],  # runs each time the asset is updated, not at a time\n",
       '    schedule="0 6 * * *",\n')],
     ["assets.schedule", "assets.triggered"],
     ["`orders_report` runs on a time schedule, `0 6 * * *`", "`schedule=[ORDERS_CLEAN]`"])
case("ex09_assets", "another_asset_name",
     "Wrong (one checklist line): the consumer is scheduled on an Asset of another name: another asset.",
     [("    schedule=[ORDERS_CLEAN],", '    schedule=[Asset("orders-clean")],')],
     ["assets.same", "assets.triggered"],
     ["`publish` updates `orders_clean`, but `orders_report` is scheduled on `orders-clean`"])
case("ex09_assets", "cancelled_orders_kept",
     "Wrong (one checklist line): publish writes every order, the cancelled and refunded ones too.",
     [('''                for o in orders if o["status"].strip().lower() == "paid"]''',
       '''                for o in orders]''')],
     ["run.warehouse", "run.consumer"], ["Table `orders_clean` holds 9 rows, expected 6"],
     passes=("run.tasks_succeeded", "assets.triggered"))
case("ex09_assets", "summary_uses_ds",
     "Wrong (one checklist line): summarize prints ds, which an asset-triggered run does not have.",
     [("    def summarize() -> dict:\n", "    def summarize(ds) -> dict:\n")],
     ["run.consumer"], ["`summarize` ended failed"], passes=("run.tasks_succeeded", "assets.triggered"))
# ex10
dag_id("ex10_sensor_trigger_rules", "orders_arrival")
start("ex10_sensor_trigger_rules")
catchup("ex10_sensor_trigger_rules")
schedule("ex10_sensor_trigger_rules", "0 6 * * *", "0 7 * * *")

// The bank and Fortnox journeys as a frontend writes them, typed only by the types generated from the
// committed openapi.yaml (generated/ledgerlink.d.ts). The contract test type-checks this module with tsc:
// a renamed field, a bare array where a list object is declared, or an undeclared to-do type fails it.
import type { components, paths, webhooks } from "./generated/ledgerlink";

type Schemas = components["schemas"];
type Json<T> = T extends { content: { "application/json": infer B } } ? B : never;
type Ok<P extends keyof paths, M extends keyof paths[P], S extends number> = paths[P][M] extends {
  responses: infer R;
}
  ? S extends keyof R
    ? Json<R[S]>
    : never
  : never;

export interface Api {
  <T>(method: "GET" | "POST" | "PATCH" | "DELETE", path: string, body?: unknown, key?: string): Promise<T>;
}
export type Approve = (url: string) => Promise<{ code: string; state: string }>;

export async function bankJourney(api: Api, approve: Approve, redirectUri: string, syncFrom: string) {
  const banks = await api<Ok<"/v1/banks", "get", 200>>("GET", "/v1/banks");
  const bank = banks.items.find((b) => b.status === "available" && b.account_types.includes("business"));
  if (bank === undefined) throw new Error("no bank for businesses");

  const create: Schemas["ConnectionCreate"] = { bank_id: bank.id, account_type: "business", redirect_uri: redirectUri };
  const created = await api<Ok<"/v1/bank-connections", "post", 201>>("POST", "/v1/bank-connections", create, crypto.randomUUID());
  const auth = created.authorization;
  if (auth.method === "decoupled") throw new Error(`decoupled: open BankID with ${auth.autostart_token}`);
  const relayed = await approve(auth.url);
  const connection = await api<Schemas["ConnectionRead"]>(
    "POST",
    `/v1/bank-connections/${created.id}/authorization`,
    relayed satisfies Schemas["AuthorizationComplete"],
  );
  const loginError: Schemas["LastErrorRead"] | null = connection.last_error; // the same shape as the account's
  if (loginError !== null) throw new Error(`login failed (${loginError.code}): ${loginError.message}`);

  const available = await api<Schemas["AvailableAccountList"]>("GET", `/v1/bank-connections/${connection.id}/available-accounts`);
  const first = available.items[0];
  if (first === undefined) throw new Error("no account at the bank");
  const link: Schemas["BankAccountCreate"] = {
    connection_id: connection.id,
    external_id: first.external_id,
    sync_from: syncFrom,
    ledger_account: "1930",
  };
  const account = await api<Schemas["BankAccountRead"]>("POST", "/v1/bank-accounts", link, crypto.randomUUID());
  const run = await api<Ok<"/v1/bank-accounts/{bank_account_id}/confirmation", "post", 202>>(
    "POST",
    `/v1/bank-accounts/${account.id}/confirmation`,
  );
  const transactions = await api<Ok<"/v1/transactions", "get", 200>>("GET", `/v1/transactions?bank_account_id=${account.id}`);
  const amounts: string[] = transactions.items.map((t) => t.amount); // money is a decimal string
  const lastError: string | null = account.last_error?.code ?? null; // why the last sync did not succeed
  return { runStatus: run.status, unbooked: account.unbooked_count, amounts, lastError, todos: await todoLines(api) };
}

/** Every to-do type is handled: adding one to the spec without handling it here fails tsc. */
export async function todoLines(api: Api): Promise<string[]> {
  const todos = await api<Schemas["TodoList"]>("GET", "/v1/todos");
  return todos.items.map((todo) => {
    switch (todo.type) {
      case "transactions_to_book":
        return `${todo.count} to book on ${todo.account_name ?? todo.bank_account_id}`;
      case "reauth_required":
        return `log in again at ${todo.bank_id}${todo.code === "consent_expired" ? " (the consent expired)" : ""}`;
      case "consent_expiring":
        return `consent at ${todo.bank_id} expires ${todo.expires_at} (reminder ${todo.days_before ?? "?"} days ahead)`;
      case "sync_failed":
        return `sync failed: ${todo.code ?? "unknown"}`;
      case "upgrade_required":
        return "upgrade to Business";
      case "fortnox_expiring":
        return `Fortnox expires ${todo.expires_at}`;
      case "balance_gap":
        return `balance out by ${todo.amount} since ${todo.since ?? "unknown"}`;
      case "sync_stalled":
        return `no rows for ${todo.days_without_rows} days`;
      default: {
        const unhandled: never = todo;
        return unhandled;
      }
    }
  });
}

export async function fortnoxJourney(api: Api, approve: Approve, redirectUri: string) {
  const started = await api<Schemas["FortnoxAuthorizationStarted"]>("POST", "/v1/fortnox/authorization", {
    redirect_uri: redirectUri,
  } satisfies Schemas["FortnoxAuthorizationRequest"]);
  const callback: Schemas["FortnoxAuthorizationCallback"] = await approve(started.authorization_url);
  const connection = await api<Ok<"/v1/fortnox/authorization/callback", "post", 200>>(
    "POST",
    "/v1/fortnox/authorization/callback",
    callback,
    crypto.randomUUID(),
  );
  if (connection.status !== "active") throw new Error(`Fortnox is ${connection.status}`);

  const years = await api<Schemas["FinancialYearList"]>("GET", "/v1/fortnox/financial-years");
  const year = years.items[0];
  if (year === undefined) throw new Error("no financial year");
  const closing = await api<Schemas["ClosingOut"]>(
    "POST",
    "/v1/closings",
    { financial_year_start: year.from_date, financial_year_end: year.to_date, data_source: "fortnox" } satisfies Schemas["ClosingCreate"],
    crypto.randomUUID(),
  );
  const job = await api<Ok<"/v1/closings/{closing_id}/imports", "post", 202>>("POST", `/v1/closings/${closing.id}/imports`);
  const imported = await api<Schemas["ImportOut"]>("GET", `/v1/closings/${closing.id}/imports/${job.id}`);
  const vouchers: number = imported.counts?.vouchers ?? 0;

  const specifications = await api<Ok<"/v1/closings/{closing_id}/specifications", "get", 200>>(
    "GET",
    `/v1/closings/${closing.id}/specifications`,
  );
  const differences = specifications.items.map((s) => [s.account, s.difference] as const);

  const adjustment = await api<Schemas["AdjustmentOut"]>(
    "POST",
    `/v1/closings/${closing.id}/adjustments`,
    {
      date: year.to_date,
      description: "Periodisering",
      rows: [
        { account: "6570", debit: "1250.00" },
        { account: "1930", credit: "1250.00" },
      ],
    } satisfies Schemas["AdjustmentCreate"],
    crypto.randomUUID(),
  );
  const series = await api<Schemas["VoucherSeriesList"]>("GET", `/v1/fortnox/voucher-series?financial_year_id=${year.id}`);
  const manual = series.items.find((s) => s.manual);
  if (manual === undefined) throw new Error("no manual series");
  const exportJob = await api<Ok<"/v1/closings/{closing_id}/exports", "post", 202>>(
    "POST",
    `/v1/closings/${closing.id}/exports`,
    { target: "fortnox", voucher_series: manual.code, adjustment_ids: [adjustment.id] } satisfies Schemas["ExportCreate"],
    crypto.randomUUID(),
  );
  const exported = await api<Schemas["ExportOut"]>("GET", `/v1/closings/${closing.id}/exports/${exportJob.id}`);
  const vouchersMade = exported.items.map((i) => i.fortnox_voucher?.number);
  return { vouchers, differences, vouchersMade, status: exported.status };
}

/** A webhook receiver: the payload of each event is typed by the spec's `webhooks`. */
type EventOf<E extends keyof webhooks> = webhooks[E] extends { post: { requestBody?: infer B } }
  ? NonNullable<B> extends { content: { "application/json": infer J } }
    ? J
    : never
  : never;

export function onSynced(event: EventOf<"bank_account.synced">): string {
  return `${event.data.bank_account_id}: ${event.data.counts.inserted} new, ${event.data.unbooked_count} to book`;
}

export function onExported(event: EventOf<"fortnox.export.completed">): number {
  return event.data.items.posted ?? 0;
}

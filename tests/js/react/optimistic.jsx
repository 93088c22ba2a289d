// A React page on the official bindings, bundled by esbuild at test set-up
// (tests/test_react_optimistic.py). It renders a balance (useQuery + useMutation with an
// optimistic update) and a paginated list (usePaginatedQuery, insertAtTop and
// optimisticallyUpdateValueInPaginatedQuery), and records every value it renders in
// window.renders, so the test can tell whether an optimistic update was ever stacked on the
// server's value. The test drives it through window.app.
import React, { useEffect } from "react";
import { createRoot } from "react-dom/client";
import {
  ConvexProvider, ConvexReactClient, insertAtTop, optimisticallyUpdateValueInPaginatedQuery,
  useConvexConnectionState, useMutation, usePaginatedQuery, useQuery,
} from "convex/react";

const params = new URLSearchParams(window.location.search);
const account = params.get("account");
const prefix = params.get("prefix");
const client = new ConvexReactClient(window.location.origin, { unsavedChangesWarning: false, skipConvexDeploymentUrlCheck: true });
window.renders = { balance: [], list: [] };

function Balance() {
  const balance = useQuery("testapp/optimistic:balance", { name: account });
  const deposit = useMutation("testapp/optimistic:deposit").withOptimisticUpdate(
    (store, { name, amount }) => {
      const current = store.getQuery("testapp/optimistic:balance", { name });
      if (current !== undefined) store.setQuery("testapp/optimistic:balance", { name }, current + amount);
    });
  useEffect(() => { if (balance !== undefined) window.renders.balance.push(balance); }, [balance]);
  window.app.deposit = (amount, hook) => deposit({ name: account, amount, hook });
  return <p id="balance">{balance === undefined ? "loading" : String(balance)}</p>;
}

function Accounts() {
  const args = { prefix };
  const { results, status } = usePaginatedQuery("testapp/optimistic:accounts", args,
    { initialNumItems: 5 });
  const open = useMutation("testapp/optimistic:open_account").withOptimisticUpdate(
    (store, { name }) => insertAtTop({
      paginatedQuery: "testapp/optimistic:accounts", argsToMatch: args, localQueryStore: store,
      item: { _id: `optimistic:${name}`, _creationTime: Date.now(), name, balance: 0 },
    }));
  const bump = useMutation("testapp/optimistic:bump").withOptimisticUpdate(
    (store, { name }) => optimisticallyUpdateValueInPaginatedQuery(
      store, "testapp/optimistic:accounts", args,
      (doc) => (doc.name === name ? { ...doc, balance: doc.balance + 1 } : doc)));
  useEffect(() => {
    if (status !== "LoadingFirstPage") {
      window.renders.list.push(results.map((doc) => ({ name: doc.name, balance: doc.balance })));
    }
  }, [results, status]);
  window.app.open = (name, hook) => open({ name, hook });
  window.app.bump = (name, hook) => bump({ name, hook });
  return <ul id="accounts">{results.map((doc) => <li key={doc._id}>{doc.name}: {doc.balance}</li>)}</ul>;
}

function Connection() {
  const state = useConvexConnectionState();
  window.app.connection = state;
  return <p id="connection">{state.isWebSocketConnected ? "connected" : "disconnected"}</p>;
}

window.app = {};
createRoot(document.getElementById("root")).render(
  <ConvexProvider client={client}>
    <Connection />
    <Balance />
    <Accounts />
  </ConvexProvider>,
);

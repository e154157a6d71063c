// A builder's page embedding the published @amp-labs/react as its README shows: an
// AmpersandProvider with a project and a frontend key around InstallIntegration. The test
// passes the project, key, integration and refs in the query string, so one bundle serves
// every provider; the API root is fixed at build time (build.mjs, REACT_APP_AMP_SERVER).
import React from "react";
import { createRoot } from "react-dom/client";
import { AmpersandProvider, InstallIntegration } from "@amp-labs/react";
import "@amp-labs/react/styles";

const params = new URLSearchParams(window.location.search);
const need = (name) => {
  const value = params.get(name);
  if (!value) throw new Error(`the page needs ?${name}=`);
  return value;
};

// What the library told the page, for the test to wait on (window.ampEvents).
window.ampEvents = [];
const record = (kind) => (installationId, config) => {
  window.ampEvents.push({ kind, installationId, config: config ?? null });
};

function Page() {
  return (
    <AmpersandProvider options={{ project: need("project"), apiKey: need("apiKey") }}>
      <InstallIntegration
        integration={need("integration")}
        consumerRef={need("consumerRef")}
        consumerName={params.get("consumerName") ?? undefined}
        groupRef={need("groupRef")}
        groupName={params.get("groupName") ?? undefined}
        onInstallSuccess={record("install")}
        onUpdateSuccess={record("update")}
        onUninstallSuccess={record("uninstall")}
      />
    </AmpersandProvider>
  );
}

createRoot(document.getElementById("root")).render(<Page />);

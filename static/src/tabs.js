// The output panel's tabs (Console, Tests, Model, Loss), with a dot on tabs that have news.

export class Tabs {
  /** @param {HTMLElement} root  the element holding [role=tab] buttons and [role=tabpanel]s */
  constructor(root, { onShow } = {}) {
    this.root = root;
    this.onShow = onShow;
    this.tabs = [...root.querySelectorAll('[role="tab"]')];
    for (const tab of this.tabs) {
      tab.addEventListener("click", () => this.show(tab.dataset.tab));
      tab.addEventListener("keydown", (event) => this.keydown(event, tab));
    }
    const selected = this.tabs.find((tab) => tab.getAttribute("aria-selected") === "true");
    this.show((selected || this.tabs[0]).dataset.tab);
  }

  panel(name) {
    return this.root.querySelector(`[role="tabpanel"][data-tab="${name}"]`);
  }

  get current() {
    const tab = this.tabs.find((t) => t.getAttribute("aria-selected") === "true");
    return tab ? tab.dataset.tab : null;
  }

  show(name) {
    for (const tab of this.tabs) {
      const on = tab.dataset.tab === name;
      tab.setAttribute("aria-selected", String(on));
      tab.tabIndex = on ? 0 : -1;
      if (on) tab.classList.remove("has-news");
      this.panel(tab.dataset.tab).hidden = !on;
    }
    this.onShow?.(name);
  }

  /** A dot on the tab when something new arrived there while another tab is shown. */
  notify(name) {
    if (this.current === name) return;
    const tab = this.tabs.find((t) => t.dataset.tab === name);
    if (tab) tab.classList.add("has-news");
  }

  clearNews() {
    for (const tab of this.tabs) tab.classList.remove("has-news");
  }

  keydown(event, tab) {
    const i = this.tabs.indexOf(tab);
    let next = null;
    if (event.key === "ArrowRight") next = this.tabs[(i + 1) % this.tabs.length];
    else if (event.key === "ArrowLeft") next = this.tabs[(i - 1 + this.tabs.length) % this.tabs.length];
    else if (event.key === "Home") next = this.tabs[0];
    else if (event.key === "End") next = this.tabs[this.tabs.length - 1];
    if (!next) return;
    event.preventDefault();
    this.show(next.dataset.tab);
    next.focus();
  }
}

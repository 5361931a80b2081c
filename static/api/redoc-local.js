// ReDoc's sidebar shows a logo from cdn.redoc.ly, built into redoc.standalone.js with no
// option to turn it off. The site loads nothing from other hosts (Content-Security-Policy,
// see SECURITY.md), so the address is blanked before the browser asks for it; ReDoc then
// hides the image (its onError). Loaded before redoc.standalone.js (templates/api/redoc.html).
(function () {
  "use strict";
  var REMOTE = /^https?:\/\/cdn\.redoc\.ly\//;
  var setAttribute = Element.prototype.setAttribute;
  Element.prototype.setAttribute = function (name, value) {
    if (name === "src" && REMOTE.test(String(value))) {
      value = "";
    }
    return setAttribute.call(this, name, value);
  };
  var src = Object.getOwnPropertyDescriptor(HTMLImageElement.prototype, "src");
  Object.defineProperty(HTMLImageElement.prototype, "src", {
    configurable: true,
    enumerable: src.enumerable,
    get: src.get,
    set: function (value) {
      src.set.call(this, REMOTE.test(String(value)) ? "" : value);
    },
  });
})();

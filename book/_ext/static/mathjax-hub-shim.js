// The static widget manager typesets widget labels with MathJax 2's API
// (MathJax.Hub.Queue(["Typeset", MathJax.Hub, element])); the book loads MathJax 3, which has no
// Hub. Give it a small Hub whose Queue typesets the element with MathJax 3 once MathJax is ready.
(function () {
  function hub() {
    return {
      Queue: function () {
        var elements = [];
        for (var i = 0; i < arguments.length; i++) {
          var a = arguments[i];
          if (Array.isArray(a) && a[0] === "Typeset" && a[2]) elements.push(a[2]);
        }
        var M = window.MathJax;
        var ready = M && M.startup && M.startup.promise ? M.startup.promise : Promise.resolve();
        return ready.then(function () {
          var MJ = window.MathJax;
          if (MJ && MJ.typesetPromise) return MJ.typesetPromise(elements.length ? elements : undefined);
        });
      }
    };
  }
  function patch() {
    var M = window.MathJax;
    if (M && !M.Hub) M.Hub = hub();
  }
  patch(); // the configuration object, if MathJax has not replaced it yet
  document.addEventListener("DOMContentLoaded", patch); // MathJax 3 itself (a deferred script)
  window.addEventListener("load", patch);
})();
